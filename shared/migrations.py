"""Forward-only SQL migrations, one schema per service.

Files are `services/<svc>/migrations/NNNN_name.sql`, applied after the platform's own
(`shared/bus/migrations`: outbox and inbox tables). Applied versions are recorded with a
SHA-256 of the file; an applied file that changed is refused. A session advisory lock per
schema makes concurrent runners (two replicas starting at once) apply each file once.
"""

from __future__ import annotations

import hashlib
import logging
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import asyncpg

log = logging.getLogger("catalytic.migrations")

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


class MigrationError(Exception):
    pass


BUS_MIGRATIONS = Path(__file__).parent / "bus" / "migrations"


@dataclass(frozen=True)
class Migration:
    source: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(source: str, directory: Path) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path}: name must look like 0001_create_tables.sql")
        found.append(Migration(source, int(match.group(1)), match.group(2), path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{directory}: two migrations share a version number")
    return found


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise MigrationError(f"not a plain identifier: {name!r}")
    return name


async def migrate(
    dsn: str, schema: str, directory: Path, *, runtime_role: str | None = None, with_bus: bool = True
) -> list[str]:
    """Apply pending migrations of one schema; return the names applied."""
    schema = _ident(schema)
    migrations = discover("bus", BUS_MIGRATIONS) if with_bus else []
    migrations += discover("service", directory)
    conn = await asyncpg.connect(dsn)
    try:
        lock_key = zlib.crc32(f"catalytic.migrate.{schema}".encode())
        await conn.execute("SELECT pg_advisory_lock($1)", lock_key)
        try:
            await _prepare_schema(conn, schema, runtime_role)
            return await _apply(conn, schema, migrations, runtime_role or "")
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", lock_key)
    finally:
        await conn.close()


async def pending(dsn: str, schema: str, directory: Path, *, with_bus: bool = True) -> list[str]:
    """Names of the migrations of one schema not applied yet (all of them if the schema is new)."""
    schema = _ident(schema)
    migrations = discover("bus", BUS_MIGRATIONS) if with_bus else []
    migrations += discover("service", directory)
    conn = await asyncpg.connect(dsn)
    try:
        exists = await conn.fetchval("SELECT to_regclass($1)", f"{schema}.schema_migrations")
        rows = await conn.fetch(f"SELECT source, version FROM {schema}.schema_migrations") if exists else []
    finally:
        await conn.close()
    applied = {(r["source"], r["version"]) for r in rows}
    return [
        f"{m.source}/{m.version:04d}_{m.name}" for m in migrations if (m.source, m.version) not in applied
    ]


async def _prepare_schema(conn: asyncpg.Connection, schema: str, runtime_role: str | None) -> None:
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    await conn.execute(
        f"CREATE TABLE IF NOT EXISTS {schema}.schema_migrations ("
        " source text NOT NULL, version integer NOT NULL, name text NOT NULL,"
        " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),"
        " PRIMARY KEY (source, version))"
    )
    if runtime_role:
        role = _ident(runtime_role)
        # The runtime role reads and writes rows; it never owns tables or runs DDL.
        # Default privileges cover tables created by later migrations; a migration may
        # REVOKE (e.g. UPDATE/DELETE on an append-only table) and it stays revoked.
        await conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        await conn.execute(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} "
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}"
        )
        await conn.execute(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT ON SEQUENCES TO {role}"
        )


async def _apply(
    conn: asyncpg.Connection,
    schema: str,
    migrations: list[Migration],
    runtime_role: str,
) -> list[str]:
    rows = await conn.fetch(f"SELECT source, version, name, checksum FROM {schema}.schema_migrations")
    applied = {(r["source"], r["version"]): r for r in rows}
    known = {(m.source, m.version) for m in migrations}
    for source, version in sorted(set(applied) - known):
        log.warning("schema %s has %s migration %04d that this code does not know", schema, source, version)
    done: list[str] = []
    for m in migrations:
        row = applied.get((m.source, m.version))
        if row is not None:
            if row["checksum"] != m.checksum:
                raise MigrationError(
                    f"{schema} {m.source} migration {m.version:04d}_{m.name} was edited after it "
                    "was applied; add a new migration instead"
                )
            continue
        async with conn.transaction():
            await conn.execute(f"SET LOCAL search_path TO {schema}")
            # Lets a migration name the runtime role, e.g. to REVOKE on an append-only table.
            await conn.execute("SELECT set_config('catalytic.runtime_role', $1, true)", runtime_role)
            await conn.execute(m.sql)
            await conn.execute(
                f"INSERT INTO {schema}.schema_migrations (source, version, name, checksum)"
                " VALUES ($1, $2, $3, $4)",
                m.source,
                m.version,
                m.name,
                m.checksum,
            )
        log.info("applied %s %s migration %04d_%s", schema, m.source, m.version, m.name)
        done.append(f"{m.source}/{m.version:04d}_{m.name}")
    return done


async def provision_role(dsn: str, role: str, password: str, database: str) -> None:
    """Create (or update) a service's login role; used by dev/test, documented for production."""
    role = _ident(role)
    conn = await asyncpg.connect(dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
        verb = "ALTER" if exists else "CREATE"
        quoted = await conn.fetchval("SELECT quote_literal($1)", password)
        await conn.execute(f"{verb} ROLE {role} LOGIN PASSWORD {quoted}")
        await conn.execute(f'GRANT CONNECT ON DATABASE "{database}" TO {role}')
        # Nobody but owners creates objects in public; services live in their own schema.
        await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    finally:
        await conn.close()
