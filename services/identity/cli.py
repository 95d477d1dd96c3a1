"""`catalytic admin create`: the first owner account, through identity's own service code."""

from __future__ import annotations

import asyncio

from services.identity.service.admin import CreatedOwner, create_owner
from services.identity.service.passwords import PasswordHasher
from services.identity.settings import get_settings
from shared.db import create_pool
from shared.errors import AppError


async def _create(email: str, tenant: str, password: str) -> CreatedOwner:
    settings = get_settings()
    if not settings.database_url:
        raise SystemExit("IDENTITY_DATABASE_URL (or DATABASE_URL) is required")
    hasher = PasswordHasher(settings.password_hash_profile, 1, 1)
    pool = await create_pool(settings.database_url, schema="identity", application_name="admin", max_size=2)
    try:
        return await create_owner(hasher, pool, email=email, tenant_name=tenant, password=password)
    finally:
        await pool.close()
        hasher.close()


def create_admin(email: str, tenant: str, password: str) -> int:
    """Print what happened; return a process exit code (1: refused, nothing changed)."""
    try:
        made = asyncio.run(_create(email, tenant, password))
    except AppError as exc:
        print(f"refused ({exc.code}): {exc}; nothing was changed")
        return 1
    print(f"created tenant {tenant!r} ({made.tenant_id}) with owner {made.email} ({made.user_id})")
    return 0
