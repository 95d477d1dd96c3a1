"""Public sign-in routes: they accept an anonymous caller and read its IP from the assertion."""

from __future__ import annotations

from litestar import Controller, post

from services.identity.schemas import (
    AcceptInvitationIn,
    LoginIn,
    LogoutIn,
    PasswordResetConfirmIn,
    PasswordResetIn,
    RefreshIn,
    RegisterIn,
    TokenPair,
    VerifyEmailIn,
)
from services.identity.service import members, recovery, sessions
from services.identity.service.common import Identity
from shared.auth.assertion import Caller
from shared.db import Connection, Pool


class AuthController(Controller):
    path = "/auth"
    tags = ["auth"]

    @post("/register", status_code=201)
    async def register(self, data: RegisterIn, caller: Caller, ctx: Identity, pool: Pool) -> TokenPair:
        return await sessions.register(ctx, pool, data, caller)

    @post("/login", status_code=200)
    async def login(self, data: LoginIn, caller: Caller, ctx: Identity, pool: Pool) -> TokenPair:
        return await sessions.login(ctx, pool, data, caller)

    @post("/refresh", status_code=200)
    async def refresh(self, data: RefreshIn, caller: Caller, ctx: Identity, pool: Pool) -> TokenPair:
        return await sessions.refresh(ctx, pool, data, caller)

    @post("/logout", status_code=204)
    async def logout(
        self, caller: Caller, ctx: Identity, tx: Connection, data: LogoutIn | None = None
    ) -> None:
        await sessions.logout(ctx, tx, caller, data)

    @post("/password-reset", status_code=202)
    async def password_reset(
        self, data: PasswordResetIn, caller: Caller, ctx: Identity, tx: Connection
    ) -> None:
        await recovery.request_reset(ctx, tx, data, caller)

    @post("/password-reset/confirm", status_code=204)
    async def password_reset_confirm(
        self, data: PasswordResetConfirmIn, caller: Caller, ctx: Identity, pool: Pool
    ) -> None:
        await recovery.confirm_reset(ctx, pool, data, caller)

    @post("/verify-email", status_code=204)
    async def verify_email(self, data: VerifyEmailIn, caller: Caller, ctx: Identity, tx: Connection) -> None:
        await recovery.verify_email(ctx, tx, data, caller)

    @post("/verify-email/resend", status_code=202)
    async def resend_verification(self, caller: Caller, ctx: Identity, tx: Connection) -> None:
        await recovery.resend_verification(ctx, tx, caller)

    @post("/accept-invitation", status_code=201)
    async def accept_invitation(
        self, data: AcceptInvitationIn, caller: Caller, ctx: Identity, pool: Pool
    ) -> TokenPair:
        return await members.accept_invitation(ctx, pool, data, caller)
