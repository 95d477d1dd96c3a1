"""Who is calling: every upstream route reads the gateway's assertion through these dependencies."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import Provide

from shared.auth.assertion import HEADER, Caller
from shared.auth.errors import AssertionMissing, InsufficientRole, InsufficientScope, LoginRequired


def _caller(request: Request[Any, Any, Any]) -> Caller:
    """Any caller that came through the gateway, anonymous included."""
    token = request.headers.get(HEADER)
    if not token:
        raise AssertionMissing()
    verifier = request.app.state.assertion_verifier
    caller: Caller = verifier.verify(token)
    return caller


def _member(caller: Caller) -> Caller:
    if not caller.is_authenticated:
        raise LoginRequired()
    return caller


def _admin(member: Caller) -> Caller:
    if member.kind == "user" and member.role in ("owner", "admin"):
        return member
    if member.kind == "api_key" and "admin" in member.scopes:
        return member
    raise InsufficientRole("only an owner or admin may do this")


def require_scope(caller: Caller, scope: str) -> None:
    """API keys act only within their scopes; users act by role."""
    if caller.kind == "api_key" and scope not in caller.scopes and "admin" not in caller.scopes:
        raise InsufficientScope(f"this API key lacks the {scope!r} scope")


CALLER = {
    "caller": Provide(_caller, sync_to_thread=False),
    "member": Provide(_member, sync_to_thread=False),
    "admin": Provide(_admin, sync_to_thread=False),
}
