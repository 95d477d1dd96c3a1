"""The whole path: calls through the real gateway are recorded by usage, each once, for its tenant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx

from shared.ids import uuid7
from tests.platform import Platform
from tests.usage.helpers import eventually, member

CALLS = 12


async def test_calls_through_the_gateway_are_counted_once_for_their_tenant(
    platform: Platform, api: httpx.AsyncClient
) -> None:
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    async with httpx.AsyncClient(base_url=platform.url("gateway"), timeout=30) as gateway:
        email = f"usage-{uuid7().hex[-12:]}@example.com"
        registered = await gateway.post(
            "/auth/register",
            json={"email": email, "password": "Velvet-Orbit-Lantern-42", "company_name": "Usage Check"},
        )
        assert registered.status_code == 201, registered.text
        account: dict[str, Any] = registered.json()
        tenant = UUID(account["tenant_id"])
        bearer = {"Authorization": f"Bearer {account['access_token']}"}
        for _ in range(CALLS):
            summary = await gateway.get("/usage/summary", headers=bearer)
            assert summary.status_code == 200, summary.text
        assert (summary.json()["plan"], summary.json()["limit"]) == ("free", 1_000)

    params = {"from": since, "granularity": "hour", "group_by": "route"}

    async def recorded() -> bool:
        report = await api.get("/usage", params=params, headers=member(tenant))
        return bool(report.json()["total_calls"] >= CALLS)

    await eventually(recorded, what="gateway calls recorded")
    report = await api.get("/usage", params=params, headers=member(tenant))
    buckets = report.json()["buckets"]
    assert sum(b["calls"] for b in buckets) == CALLS  # the registration was anonymous: nobody's
    assert {b["route"] for b in buckets} == {"/usage"}
    assert sum(b["client_errors"] + b["server_errors"] for b in buckets) == 0
