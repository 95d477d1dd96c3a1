"""One valid event of every domain type in the catalog, built from the payload's own field types."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
import msgspec.inspect as mi

from services.usage.audit import is_secret
from shared.events import CATALOG, DOMAIN_STREAMS, Actor, Event, Payload, new_event
from shared.ids import uuid7


def domain_types() -> list[str]:
    return sorted(t for t, spec in CATALOG.items() if spec.stream in DOMAIN_STREAMS)


def sample_payload(cls: type[Payload], secret: str) -> Payload:
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    values = {f.name: _value(f.name, f.type, secret) for f in info.fields}
    payload = msgspec.convert(values, cls)
    assert isinstance(payload, cls)
    return payload


def _value(name: str, tp: mi.Type, secret: str) -> Any:
    if isinstance(tp, mi.UnionType):
        return _value(name, next(t for t in tp.types if not isinstance(t, mi.NoneType)), secret)
    if isinstance(tp, mi.StrType):
        if is_secret(name):
            return secret
        if name in ("email", "to"):
            return f"audit-{uuid7().hex[-8:]}@example.invalid"
        return f"{name}-value"
    if isinstance(tp, mi.UUIDType):
        return str(uuid7())
    if isinstance(tp, mi.DateTimeType):
        return datetime.now(UTC).isoformat()
    if isinstance(tp, mi.BoolType):
        return True
    if isinstance(tp, mi.IntType):
        return 1
    if isinstance(tp, mi.FloatType):
        return 1.5
    if isinstance(tp, mi.LiteralType):
        return tp.values[0]
    if isinstance(tp, (mi.ListType, mi.VarTupleType, mi.SetType, mi.FrozenSetType)):
        return [_value(name, tp.item_type, secret)]
    if isinstance(tp, mi.DictType):
        return {str(uuid7()): _value(name, tp.value_type, secret)}
    raise TypeError(f"no sample for {name}: {tp}")


def sample_event(event_type: str, tenant: UUID, user: UUID, secret: str) -> Event[Any]:
    payload = sample_payload(CATALOG[event_type].payload, secret)
    actor = Actor(kind="user", id=str(user), ip="203.0.113.9")
    return new_event(payload, tenant_id=tenant, actor=actor, correlation_id=f"corr-{event_type}")
