"""Tenants, users, API keys (identity) and subscriptions (billing), with their projections."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from services.billing.repository import contacts as billing_contacts
from services.billing.repository import legacy as billing
from services.identity import errors as identity_errors
from services.identity.repository import legacy as identity
from services.identity.service import emails
from services.notifier.repository import contacts as notifier_contacts
from shared.db import Connection
from shared.ops.legacy.report import Report
from shared.ops.legacy.source import Rows, flag, uid, when, words
from shared.plans import DEFAULT_PLAN, PLANS

# Never a valid argon2 hash: login fails until the user sets a password through the reset flow.
RESET_REQUIRED = "!legacy-password-reset-required"
ROLES = ("owner", "admin", "member")
_KEY_PREFIX = re.compile(r"^[a-z0-9]{12}$")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class Imported:
    """Legacy id -> platform id of every row that is in the platform (now or from an earlier run)."""

    def __init__(self) -> None:
        self.tenants: dict[Any, UUID] = {}
        self.users: dict[Any, UUID] = {}
        self.keys: dict[Any, UUID] = {}
        self.webhooks: dict[Any, tuple[UUID, UUID]] = {}  # -> (endpoint id, tenant id)


async def use_schema(tx: Connection, schema: str) -> None:
    await tx.execute(f"SET LOCAL search_path TO {schema}")


def _plan(value: Any) -> str:
    plan = str(value or DEFAULT_PLAN).strip().lower()
    return plan if plan in PLANS else DEFAULT_PLAN


async def tenants(tx: Connection, rows: Rows, report: Report, done: Imported) -> None:
    t = report.tables["tenants"]
    await use_schema(tx, "identity")
    for row in rows["tenants"]:
        t.read += 1
        name = str(row.get("name") or "").strip()
        if not name:
            t.skip("blank name")
            continue
        tenant_id = uid("tenant", row["id"])
        created = when(row.get("created_at")) or _now()
        if await identity.insert_tenant(tx, tenant_id, name, _plan(row.get("plan")), created):
            t.imported += 1
        else:
            t.skip("already imported")
        done.tenants[row["id"]] = tenant_id
    for schema, upsert in (
        ("notifier", notifier_contacts.upsert_tenant),
        ("billing", billing_contacts.upsert_tenant),
    ):
        await use_schema(tx, schema)
        for row in rows["tenants"]:
            if row["id"] in done.tenants:
                await upsert(tx, done.tenants[row["id"]], str(row["name"]).strip(), None)


def password_hash(raw: Any) -> tuple[str, str | None]:
    """(hash to store, why the user must reset) — identity verifies argon2 only."""
    text = str(raw or "")
    if text.startswith("$argon2"):
        return text, None
    if text.startswith(("$2a$", "$2b$", "$2y$")):
        return RESET_REQUIRED, "bcrypt"
    return RESET_REQUIRED, "unknown hash format"


async def users(tx: Connection, rows: Rows, report: Report, done: Imported) -> None:
    t = report.tables["users"]
    resets: list[str] = []
    await use_schema(tx, "identity")
    projected: list[tuple[UUID, UUID, str, str, str | None]] = []
    for row in rows["users"]:
        t.read += 1
        tenant_id = done.tenants.get(row.get("tenant_id"))
        if tenant_id is None:
            t.skip("its tenant was not imported")
            continue
        try:
            email = emails.normalize(str(row.get("email") or ""))
        except identity_errors.InvalidEmail:
            t.skip("invalid email")
            continue
        stored, reset = password_hash(row.get("password_hash"))
        role = str(row.get("role") or "member").lower()
        user_id = uid("user", row["id"])
        created = when(row.get("created_at")) or _now()
        outcome = await identity.insert_user(
            tx,
            user_id=user_id,
            tenant_id=tenant_id,
            email=email,
            password_hash=stored,
            role=role if role in ROLES else "member",
            first_name=row.get("first_name") or None,
            last_name=row.get("last_name") or None,
            verified_at=created if flag(row.get("email_verified")) else None,
            created_at=created,
        )
        if outcome == "email taken":
            t.skip("email belongs to another account")
            continue
        if outcome == "imported":
            t.imported += 1
            if reset:
                resets.append(f"{email} ({reset})")
        else:
            t.skip("already imported")
        done.users[row["id"]] = user_id
        projected.append(
            (tenant_id, user_id, email, role if role in ROLES else "member", row.get("first_name"))
        )
    await use_schema(tx, "notifier")
    for tenant_id, user_id, email, role, first in projected:
        await notifier_contacts.upsert_member(tx, tenant_id, user_id, email, role, first)
    await use_schema(tx, "billing")
    for tenant_id, user_id, email, role, _ in projected:
        await billing_contacts.upsert_user(tx, tenant_id, user_id, email, role)
    if resets:
        report.notes.append(
            f"{len(resets)} user(s) must reset their password (identity verifies argon2 hashes only;"
            f" login fails until they use 'forgot password'): {', '.join(resets)}"
        )


async def api_keys(tx: Connection, rows: Rows, report: Report, done: Imported) -> None:
    t = report.tables["api_keys"]
    await use_schema(tx, "identity")
    for row in rows["api_keys"]:
        t.read += 1
        tenant_id = done.tenants.get(row.get("tenant_id"))
        if tenant_id is None:
            t.skip("its tenant was not imported")
            continue
        prefix, digest = str(row.get("prefix") or ""), str(row.get("key_hash") or "").lower()
        env = str(row.get("env") or "live")
        if not _KEY_PREFIX.match(prefix) or not _SHA256_HEX.match(digest) or env not in ("live", "test"):
            t.skip("incompatible key (not cc_<env>_<prefix>_<secret> with a SHA-256 of the secret): reissue")
            continue
        key_id = uid("api_key", row["id"])
        added = await identity.insert_api_key(
            tx,
            key_id=key_id,
            tenant_id=tenant_id,
            name=str(row.get("name") or "imported key"),
            env=env,
            prefix=prefix,
            secret_hash=digest,
            scopes=words(row.get("scopes")),
            created_at=when(row.get("created_at")) or _now(),
            expires_at=when(row.get("expires_at")),
            revoked_at=when(row.get("revoked_at")),
        )
        if added:
            t.imported += 1
        elif not await identity.api_key_exists(tx, key_id):
            t.skip("prefix belongs to another key")
            continue
        else:
            t.skip("already imported")
        done.keys[row["id"]] = key_id


async def subscriptions(tx: Connection, rows: Rows, report: Report, done: Imported) -> None:
    t = report.tables["subscriptions"]
    await use_schema(tx, "billing")
    for row in rows["subscriptions"]:
        t.read += 1
        tenant_id = done.tenants.get(row.get("tenant_id"))
        if tenant_id is None:
            t.skip("its tenant was not imported")
            continue
        sub_id, customer = (
            str(row.get("stripe_subscription_id") or ""),
            str(row.get("stripe_customer_id") or ""),
        )
        if not sub_id.startswith("sub_") or not customer.startswith("cus_"):
            t.skip("no Stripe subscription or customer id")
            continue
        added = await billing.insert_subscription(
            tx,
            tenant_id=tenant_id,
            customer_id=customer,
            subscription_id=sub_id,
            plan=_plan(row.get("plan")),
            status=str(row.get("status") or "active"),
            current_period_end=when(row.get("current_period_end")),
            cancel_at_period_end=flag(row.get("cancel_at_period_end")),
            created_at=when(row.get("created_at")) or _now(),
        )
        if added:
            t.imported += 1
        else:
            t.skip("already imported")


def _now() -> datetime:
    return datetime.now(UTC)
