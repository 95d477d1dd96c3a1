"""Redis Streams plumbing shared by producers and consumers; copes with Redis 6.2 and 7."""

from __future__ import annotations

import logging
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

log = logging.getLogger("catalytic.bus")

DEAD_SUFFIX = ".dead"
DEAD_MAXLEN = 100_000


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def ensure_group(redis: Redis, stream: str, group: str) -> None:
    """Create the group (and the stream) from the beginning, so nothing already there is missed."""
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
        log.info("created consumer group %s on %s", group, stream)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def dead_letter(
    redis: Redis,
    stream: str,
    group: str,
    entry_id: bytes | str,
    fields: dict[bytes, bytes] | None,
    reason: str,
    detail: str,
    deliveries: int,
) -> None:
    """Park an entry on `<stream>.dead` with the reason, then ack it so the group moves on."""
    record: dict[str | bytes, bytes | str | int] = {
        "stream": stream,
        "group": group,
        "entry_id": _s(entry_id),
        "reason": reason,
        "detail": detail[:2000],
        "deliveries": deliveries,
    }
    if fields:
        record["type"] = fields.get(b"type", b"")
        record["event"] = fields.get(b"event", b"")
    pipe = redis.pipeline(transaction=True)
    pipe.xadd(stream + DEAD_SUFFIX, record, maxlen=DEAD_MAXLEN, approximate=True)  # type: ignore[arg-type]
    pipe.xack(stream, group, entry_id)
    await pipe.execute()
    log.warning("dead-lettered %s on %s for %s: %s (%s)", _s(entry_id), stream, group, reason, detail[:200])


async def autoclaim(
    redis: Redis, stream: str, group: str, consumer: str, min_idle_ms: int, start: str, count: int
) -> tuple[str, list[tuple[bytes, dict[bytes, bytes]]], list[bytes]]:
    """XAUTOCLAIM; returns (next start, live entries, ids whose data is gone).

    Redis 6.2 answers [next, entries] with nil in place of deleted entries; 7 answers
    [next, entries, deleted ids]. Both become the same triple here.
    """
    reply = await redis.execute_command(  # type: ignore[no-untyped-call]
        "XAUTOCLAIM", stream, group, consumer, min_idle_ms, start, "COUNT", count
    )
    next_start = _s(reply[0])
    live: list[tuple[bytes, dict[bytes, bytes]]] = []
    gone: list[bytes] = [bytes(x) for x in reply[2]] if len(reply) > 2 and reply[2] else []
    for item in reply[1] or ():
        if item is None or item[1] is None:
            if item is not None and item[0] is not None:
                gone.append(item[0])
            continue
        entry_id, fields = item[0], item[1]
        if not isinstance(fields, dict):  # raw reply: a flat [k1, v1, k2, v2] list
            fields = dict(zip(fields[::2], fields[1::2], strict=True))
        live.append((entry_id, fields))
    return next_start, live, gone


async def delivery_counts(redis: Redis, stream: str, group: str, ids: list[bytes]) -> dict[bytes, int]:
    pipe = redis.pipeline(transaction=False)
    for entry_id in ids:
        pipe.xpending_range(stream, group, min=entry_id, max=entry_id, count=1)
    counts: dict[bytes, int] = {}
    for entry_id, reply in zip(ids, await pipe.execute(), strict=True):
        if reply:
            counts[entry_id] = int(reply[0]["times_delivered"])
    return counts


async def trim_consumed(redis: Redis, stream: str) -> None:
    """Drop entries every group has acknowledged; never anything still pending or unread."""
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:
        return  # no such stream yet
    if not groups:
        return  # nobody reads it yet: keep everything (XADD's MAXLEN bounds it)
    floor: str | None = None
    for group in groups:
        name = _s(group["name"])
        candidate = _s(group["last-delivered-id"])
        summary = await redis.xpending(stream, name)
        if summary and summary.get("pending"):
            candidate = min(candidate, _s(summary["min"]), key=_id_key)
        floor = candidate if floor is None else min(floor, candidate, key=_id_key)
    if floor and floor != "0-0":
        await redis.execute_command(  # type: ignore[no-untyped-call]
            "XTRIM", stream, "MINID", "~", floor
        )


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
