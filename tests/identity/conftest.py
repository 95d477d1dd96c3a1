"""Identity tests call the service over HTTP with gateway assertions, against real Postgres/Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
import redis

from shared import events
from tests.platform import Platform
from tests.support import anonymous, as_caller, as_service

PASSWORD = "Velvet-Orbit-Lantern-42"


def unique_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"


def random_ip() -> str:
    n = uuid.uuid4().int
    return f"10.{n % 250 + 1}.{(n >> 8) % 250 + 1}.{(n >> 16) % 250 + 1}"


def claims_of(access_token: str) -> dict[str, Any]:
    # The signature is checked in the token tests; here we only read what the gateway would.
    decoded: dict[str, Any] = jwt.decode(access_token, options={"verify_signature": False})
    return decoded


def user_headers(access_token: str, ip: str = "127.0.0.1") -> dict[str, str]:
    """The assertion the gateway sends after verifying this access token."""
    c = claims_of(access_token)
    return as_caller(
        "identity",
        kind="user",
        tenant_id=c["tenant_id"],
        user_id=c["sub"],
        role=c["role"],
        plan=c["plan"],
        jti=c["jti"],
        ip=ip,
    )


def key_headers(key_id: str, tenant_id: str, scopes: tuple[str, ...] = ("admin",)) -> dict[str, str]:
    return as_caller(
        "identity", kind="api_key", tenant_id=tenant_id, api_key_id=key_id, scopes=scopes, role=None
    )


@dataclass
class Account:
    email: str
    password: str
    tenant_id: str
    user_id: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return user_headers(self.access_token)


class Identity:
    """The identity service as the gateway sees it, plus admin access to its schema and Redis."""

    def __init__(self, stack: Platform) -> None:
        self.base = stack.url("identity")
        self.http = httpx.Client(base_url=self.base, timeout=30)
        self.admin_dsn = stack.env["DATABASE_URL"]
        self.redis = redis.Redis.from_url(stack.env["REDIS_URL"], decode_responses=True)
        self._loop = asyncio.new_event_loop()
        self._conn: asyncpg.Connection | None = None

    def call(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        return self.http.request(method, path, headers=headers, **kw)

    def post(
        self, path: str, body: Any = None, headers: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        if body is not None:
            kw["json"] = body
        return self.http.post(path, headers=headers if headers is not None else anonymous("identity"), **kw)

    def get(self, path: str, headers: dict[str, str]) -> httpx.Response:
        return self.http.get(path, headers=headers)

    def register(self, email: str | None = None, company: str = "Acme Lattice") -> Account:
        email = email or unique_email("owner")
        body = {"email": email, "password": PASSWORD, "company_name": company, "first_name": "Ada"}
        resp = self.post("/auth/register", body)
        assert resp.status_code == 201, resp.text
        got = resp.json()
        return Account(
            email, PASSWORD, got["tenant_id"], got["user_id"], got["access_token"], got["refresh_token"]
        )

    def login(self, email: str, password: str = PASSWORD, ip: str | None = None) -> httpx.Response:
        headers = anonymous("identity", ip=ip or random_ip())
        return self.post("/auth/login", {"email": email, "password": password}, headers)

    def invite_and_join(self, owner: Account, role: str = "member") -> Account:
        email = unique_email(role)
        resp = self.post("/users/invitations", {"email": email, "role": role}, owner.headers)
        assert resp.status_code == 201, resp.text
        token = self.event("identity.user.invited", invitation_id=resp.json()["id"]).data.token
        joined = self.post("/auth/accept-invitation", {"token": token, "password": PASSWORD})
        assert joined.status_code == 201, joined.text
        got = joined.json()
        return Account(
            email, PASSWORD, got["tenant_id"], got["user_id"], got["access_token"], got["refresh_token"]
        )

    # --- the database and the outbox, read as an operator would -----------------------

    def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        """Run SQL as the database owner (tests are synchronous: a private loop drives asyncpg)."""
        if self._conn is None:
            self._conn = self._loop.run_until_complete(asyncpg.connect(self.admin_dsn))
        return self._loop.run_until_complete(self._conn.fetch(query, *args))

    def close(self) -> None:
        self.http.close()
        self.redis.close()
        if self._conn is not None:
            self._loop.run_until_complete(self._conn.close())
        self._loop.close()

    def events(self, type_: str, **match: Any) -> list[events.Event[Any]]:
        rows = self.sql("SELECT payload FROM identity.outbox WHERE type = $1 ORDER BY seq", type_)
        found = [events.decode(bytes(r["payload"])) for r in rows]
        return [e for e in found if all(str(getattr(e.data, k)) == str(v) for k, v in match.items())]

    def event(self, type_: str, **match: Any) -> events.Event[Any]:
        found = self.events(type_, **match)
        assert found, f"no {type_} event matching {match}"
        return found[-1]

    def outbox_seq(self) -> int:
        return int(self.sql("SELECT coalesce(max(seq), 0) AS s FROM identity.outbox")[0]["s"])


@pytest.fixture(scope="session")
def identity(platform: Platform) -> Iterator[Identity]:
    svc = Identity(platform)
    yield svc
    svc.close()


@pytest.fixture
def owner(identity: Identity) -> Account:
    return identity.register()


__all__ = ["PASSWORD", "Account", "Identity", "as_service", "key_headers", "random_ip", "unique_email"]
