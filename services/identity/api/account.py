"""The signed-in side: who am I, the tenant, its users and invitations."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, delete, get, patch, post

from services.identity.repository.sessions import Session
from services.identity.schemas import (
    ChangePasswordIn,
    InvitationOut,
    InviteIn,
    MeOut,
    RolePatch,
    TenantOut,
    TenantPatch,
    TokenPair,
    UserOut,
)
from services.identity.service import members, sessions
from services.identity.service.common import Identity, signed_in
from shared.auth.assertion import Caller
from shared.db import Connection, Pool
from shared.http.caller import require_scope

READ = "identity:read"  # lets an API key read the tenant and its users without being an admin

# Routes take `caller` (resolved before `tx`) and check membership and roles in the service: Litestar
# does not close an already-opened `tx` when a dependency resolved with or after it (member/admin)
# raises, which would leave a connection idle in transaction for every refused request.


class MeController(Controller):
    path = "/me"
    tags = ["account"]

    @get("/")
    async def me(self, caller: Caller, tx: Connection) -> MeOut:
        return await members.me(tx, caller)

    @get("/sessions")
    async def list_sessions(self, caller: Caller, tx: Connection) -> list[Session]:
        return await sessions.list_sessions(tx, caller)

    @delete("/sessions/{session_id:uuid}", status_code=204)
    async def end_session(self, session_id: UUID, caller: Caller, ctx: Identity, tx: Connection) -> None:
        await sessions.end_session(ctx, tx, caller, session_id)

    @post("/password", status_code=200)
    async def change_password(
        self, data: ChangePasswordIn, caller: Caller, ctx: Identity, pool: Pool
    ) -> TokenPair:
        return await sessions.change_password(ctx, pool, caller, data)


class TenantController(Controller):
    path = "/tenant"
    tags = ["account"]

    @get("/")
    async def get_tenant(self, caller: Caller, tx: Connection) -> TenantOut:
        require_scope(signed_in(caller), READ)
        return await members.get_tenant(tx, caller)

    @patch("/")
    async def rename(self, data: TenantPatch, caller: Caller, tx: Connection) -> TenantOut:
        return await members.rename_tenant(tx, caller, data)


class UsersController(Controller):
    path = "/users"
    tags = ["users"]

    @get("/")
    async def list_users(self, caller: Caller, tx: Connection) -> list[UserOut]:
        require_scope(signed_in(caller), READ)
        return await members.list_users(tx, caller)

    @get("/{user_id:uuid}")
    async def get_user(self, user_id: UUID, caller: Caller, tx: Connection) -> UserOut:
        require_scope(signed_in(caller), READ)
        return await members.get_user(tx, caller, user_id)

    @patch("/{user_id:uuid}")
    async def change_role(
        self, user_id: UUID, data: RolePatch, caller: Caller, ctx: Identity, tx: Connection
    ) -> UserOut:
        return await members.change_role(ctx, tx, caller, user_id, data.role)

    @delete("/{user_id:uuid}", status_code=204)
    async def remove(self, user_id: UUID, caller: Caller, ctx: Identity, tx: Connection) -> None:
        await members.remove_user(ctx, tx, caller, user_id)

    @post("/invitations", status_code=201)
    async def invite(self, data: InviteIn, caller: Caller, ctx: Identity, tx: Connection) -> InvitationOut:
        return await members.invite(ctx, tx, caller, data)

    @get("/invitations")
    async def invitations(self, caller: Caller, tx: Connection) -> list[InvitationOut]:
        return await members.list_invitations(tx, caller)

    @delete("/invitations/{invitation_id:uuid}", status_code=204)
    async def revoke_invitation(self, invitation_id: UUID, caller: Caller, tx: Connection) -> None:
        await members.revoke_invitation(tx, caller, invitation_id)
