"""One usage record per request, in batches on the gateway.requests stream."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any

import redis

from shared import events
from shared.events import GATEWAY_REQUESTS_STREAM, RequestBatch, UsageRecord
from tests.gateway.conftest import Stack
from tests.gateway.support import async_client, bearer, mint, new_id, stub_api_key


class StreamTap:
    """Reads gateway.requests from its current end with blocking XREAD, as it grows."""

    def __init__(self, rds: redis.Redis) -> None:
        self.rds = rds
        last: Any = rds.xrevrange(GATEWAY_REQUESTS_STREAM, count=1)
        self.position = last[0][0] if last else b"0-0"
        self.records: dict[str, list[UsageRecord]] = {}
        self.entries: dict[str, bytes] = {}  # request id -> the stream entry that carried it
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            reply: Any = self.rds.xread({GATEWAY_REQUESTS_STREAM: self.position}, block=200, count=100)
            for _, entries in reply or ():
                for entry_id, fields in entries:
                    self.position = entry_id
                    event = events.decode(fields[b"event"])
                    assert isinstance(event.data, RequestBatch)
                    for record in event.data.records:
                        self.records.setdefault(record.request_id, []).append(record)
                        self.entries[record.request_id] = entry_id

    def wait_for(self, ids: set[str], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not ids <= set(self.records) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.stop.set()
        self.thread.join(5)


def test_every_request_leaves_one_record_in_batches(gw: Stack, rds: redis.Redis) -> None:
    tap = StreamTap(gw.redis())
    tenant, user = new_id(), new_id()
    token = mint(tenant=tenant, user=user)
    key, row, _ = stub_api_key(rds)
    expected: dict[str, tuple[int, str]] = {}

    async def send(i: int) -> None:
        async with async_client(gw.gateways[i % 2]) as c:
            rid = f"usage-{uuid.uuid4().hex}"
            if i % 4 == 0:
                resp = await c.get("/echo", headers={**bearer(token), "X-Request-ID": rid})
            elif i % 4 == 1:
                resp = await c.post(
                    "/echo/x", content=b"12345", headers={"X-API-Key": key, "X-Request-ID": rid}
                )
            elif i % 4 == 2:
                resp = await c.get("/echo", headers={"X-Request-ID": rid})  # 401
            else:
                resp = await c.get("/nowhere", headers={**bearer(token), "X-Request-ID": rid})  # 404
            expected[rid] = (resp.status_code, resp.request.method)

    async def send_all() -> None:
        await asyncio.gather(*(send(i) for i in range(40)))

    asyncio.run(send_all())
    tap.wait_for(set(expected))
    assert set(expected) <= set(tap.records)
    for rid, (status, method) in expected.items():
        found = tap.records[rid]
        assert len(found) == 1, rid  # exactly one record per request
        record = found[0]
        assert record.status == status
        assert record.method == method
        assert record.latency_ms >= 0
        assert record.bytes_out > 0
        assert record.at.tzinfo is not None
    by_status = {r.status for rid in expected for r in tap.records[rid]}
    assert by_status == {200, 401, 404}
    user_records = [tap.records[rid][0] for rid in expected if tap.records[rid][0].user_id is not None]
    assert {str(r.tenant_id) for r in user_records} == {tenant}
    assert {str(r.user_id) for r in user_records} == {user}
    key_records = [tap.records[rid][0] for rid in expected if tap.records[rid][0].api_key_id is not None]
    assert len(key_records) == 10
    assert all(str(r.api_key_id) == row.key_id and r.bytes_in == 5 for r in key_records)
    assert all(r.route == "/echo" and r.metered for r in key_records)
    anonymous = [tap.records[rid][0] for rid in expected if tap.records[rid][0].status == 401]
    assert all(r.tenant_id is None and not r.metered for r in anonymous)
    # Batched: 40 concurrent requests on two gateways left in fewer stream entries than requests.
    assert len({tap.entries[rid] for rid in expected}) < len(expected)
