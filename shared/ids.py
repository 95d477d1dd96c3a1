"""Identifiers: UUIDv7 (time-ordered) for events and rows."""

from __future__ import annotations

import os
import time
import uuid

_last_ms = 0
_seq = 0


def uuid7() -> uuid.UUID:
    """RFC 9562 UUIDv7: 48-bit ms timestamp, then a 12-bit counter so ids made in one ms still sort."""
    global _last_ms, _seq
    ms = time.time_ns() // 1_000_000
    if ms <= _last_ms:
        ms = _last_ms
        _seq = (_seq + 1) & 0xFFF
        if _seq == 0:  # counter exhausted within this ms: move to the next one
            ms += 1
    else:
        _seq = int.from_bytes(os.urandom(2), "big") & 0x3FF  # random start, room to count up
    _last_ms = ms
    rand = int.from_bytes(os.urandom(8), "big") & 0x3FFF_FFFF_FFFF_FFFF
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | _seq << 64 | 0b10 << 62 | rand
    return uuid.UUID(int=value)
