"""A small legacy monolith database with rows in every table, as SQLite or PostgreSQL."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import argon2
import asyncpg

DDL = """
CREATE TABLE tenants (id INTEGER PRIMARY KEY, name TEXT, plan TEXT, created_at TIMESTAMP);
CREATE TABLE users (id INTEGER PRIMARY KEY, tenant_id INTEGER, email TEXT, password_hash TEXT, role TEXT,
    first_name TEXT, last_name TEXT, email_verified BOOLEAN, created_at TIMESTAMP);
CREATE TABLE subscriptions (id INTEGER PRIMARY KEY, tenant_id INTEGER, stripe_customer_id TEXT,
    stripe_subscription_id TEXT, plan TEXT, status TEXT, current_period_end TIMESTAMP,
    cancel_at_period_end BOOLEAN, created_at TIMESTAMP);
CREATE TABLE api_keys (id INTEGER PRIMARY KEY, tenant_id INTEGER, name TEXT, env TEXT, prefix TEXT,
    key_hash TEXT, scopes TEXT, created_at TIMESTAMP, expires_at TIMESTAMP, revoked_at TIMESTAMP);
CREATE TABLE usage_logs (id INTEGER PRIMARY KEY, tenant_id INTEGER, api_key_id INTEGER, method TEXT,
    path TEXT, status_code INTEGER, response_ms REAL, ip TEXT, created_at TIMESTAMP);
CREATE TABLE audit_logs (id INTEGER PRIMARY KEY, tenant_id INTEGER, user_id INTEGER, action TEXT,
    details TEXT, ip TEXT, created_at TIMESTAMP);
CREATE TABLE webhooks (id INTEGER PRIMARY KEY, tenant_id INTEGER, url TEXT, secret TEXT, events TEXT,
    active BOOLEAN, created_at TIMESTAMP);
CREATE TABLE webhook_deliveries (id INTEGER PRIMARY KEY, webhook_id INTEGER, event_type TEXT,
    payload TEXT, status TEXT, attempts INTEGER, response_code INTEGER, created_at TIMESTAMP);
"""

T0 = datetime(2025, 3, 1, 12, 0, 0)
PASSWORD = "legacy password 2025"
KEY_SECRET = "s" * 43
KEY_PREFIX = "abcdef123456"
WEBHOOK_SECRET = "whsec_legacy_one"
ARGON2_HASH = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
BCRYPT_HASH = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"


def rows() -> dict[str, list[tuple[Any, ...]]]:
    return {
        "tenants": [(1, "Acme", "professional", T0), (2, "Beta", "gold", T0), (3, "", "free", T0)],
        "users": [
            (1, 1, "Owner@Acme.example", ARGON2_HASH, "owner", "Ada", "L", True, T0),
            (2, 1, "dev@acme.example", BCRYPT_HASH, "member", None, None, False, T0),
            (3, 2, "admin@beta.example", ARGON2_HASH, "admin", "Bo", None, True, T0),
            (4, 3, "ghost@nowhere.example", ARGON2_HASH, "owner", None, None, True, T0),
            (5, 1, "not-an-email", ARGON2_HASH, "member", None, None, False, T0),
        ],
        "subscriptions": [
            (1, 1, "cus_Acme1", "sub_Acme1", "professional", "active", T0, False, T0),
            (2, 2, "cus_Beta1", None, "starter", "incomplete", None, False, T0),
        ],
        "api_keys": [
            (
                1,
                1,
                "ci",
                "live",
                KEY_PREFIX,
                hashlib.sha256(KEY_SECRET.encode()).hexdigest(),
                "read,write",
                T0,
                None,
                None,
            ),
            (2, 1, "old", "live", "k1", "pbkdf2_sha256$600000$salt$hash", "", T0, None, None),
        ],
        "usage_logs": [
            (1, 1, 1, "GET", "/lattice/jobs", 200, 12.5, "203.0.113.9", T0),
            (2, 1, 1, "POST", "/lattice/jobs", 201, 40.0, "203.0.113.9", T0),
            (3, 1, None, "GET", "/lattice/jobs", 429, 1.0, None, T0),
            (4, 2, None, "GET", "/lattice/jobs", 200, 3.0, None, T0),
            (5, 3, None, "GET", "/lattice/jobs", 200, 3.0, None, T0),
            (6, None, None, "POST", "/auth/login", 401, 30.0, "198.51.100.1", T0),
        ],
        "audit_logs": [
            (1, 1, 1, "user.login", '{"method": "password"}', "203.0.113.9", T0),
            (2, 2, None, "plan.changed", "not json", None, T0),
            (3, 3, None, "tenant.deleted", None, None, T0),
        ],
        "webhooks": [
            (1, 1, "https://hooks.acme.example/in", WEBHOOK_SECRET, "invoice.paid,user.created", True, T0),
            (2, 2, "ftp://beta.example/in", "whsec_x", "", True, T0),
            (3, 1, "https://old.acme.example/in", "whsec_old", "*", False, T0),
        ],
        "webhook_deliveries": [
            (1, 1, "invoice.paid", '{"id": 1}', "success", 1, 200, T0),
            (2, 1, "user.created", '{"id": 2}', "pending", 0, None, T0),
            (3, 2, "invoice.paid", '{"id": 3}', "failed", 5, 500, T0),
        ],
    }


def build_sqlite(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        conn.executescript(DDL)
        for table, values in rows().items():
            marks = ", ".join("?" * len(values[0]))
            conn.executemany(f"INSERT INTO {table} VALUES ({marks})", values)
        conn.commit()
    finally:
        conn.close()
    return f"sqlite:///{path}"


async def build_postgres(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(DDL)
        for table, values in rows().items():
            marks = ", ".join(f"${i}" for i in range(1, len(values[0]) + 1))
            await conn.executemany(f"INSERT INTO {table} VALUES ({marks})", values)
    finally:
        await conn.close()
