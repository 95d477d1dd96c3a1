"""Who a request comes from, as the gateway established it."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from shared.auth.assertion import CallerKind


@dataclass(frozen=True, slots=True)
class Principal:
    kind: CallerKind
    tenant: str | None = None  # tenant id as text: Redis keys and the usage record use it
    tenant_id: UUID | None = None
    user_id: UUID | None = None
    api_key_id: UUID | None = None
    role: str | None = None
    plan: str | None = None
    scopes: tuple[str, ...] = ()
    jti: str | None = None
    iat: int = 0
    expires_at: float | None = None  # unix seconds; None: never

    def has_scope(self, scope: str) -> bool:
        """API keys act within their scopes; users act by role (upstreams check it)."""
        return self.kind != "api_key" or scope in self.scopes or "admin" in self.scopes


ANONYMOUS = Principal(kind="anonymous")
