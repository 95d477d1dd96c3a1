"""One transaction for the whole import: all of it lands, or none (and a dry run rolls back)."""

from __future__ import annotations

import asyncpg

from shared.crypto import SecretBox
from shared.db import _init_connection
from shared.migrations import pending
from shared.ops.legacy import accounts, activity
from shared.ops.legacy.report import Report
from shared.ops.legacy.source import LegacyError, read_all
from shared.platform import SERVICES


async def run(source_url: str, target_url: str, secrets_key: str, *, dry_run: bool) -> Report:
    box = SecretBox(secrets_key)
    rows = await read_all(source_url)
    for info in SERVICES.values():
        if info.schema and await pending(target_url, info.schema, info.migrations):
            raise LegacyError(f"schema {info.schema} has pending migrations: run `catalytic migrate` first")
    report = Report(dry_run=dry_run)
    done = accounts.Imported()
    # Statements run in several schemas (search_path per step): no prepared-statement reuse.
    conn = await asyncpg.connect(target_url, statement_cache_size=0)
    try:
        await _init_connection(conn)
        tx = conn.transaction()
        await tx.start()
        try:
            await accounts.tenants(conn, rows, report, done)
            await accounts.users(conn, rows, report, done)
            await accounts.api_keys(conn, rows, report, done)
            await accounts.subscriptions(conn, rows, report, done)
            await activity.usage_logs(conn, rows, report, done)
            await activity.audit_logs(conn, rows, report, done)
            await activity.webhooks(conn, rows, report, done, box)
            await activity.webhook_deliveries(conn, rows, report, done)
        except BaseException:
            await tx.rollback()
            raise
        if dry_run:
            await tx.rollback()
        else:
            await tx.commit()
    finally:
        await conn.close()
    return report
