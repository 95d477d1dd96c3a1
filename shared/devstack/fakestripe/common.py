"""Parameter checks and listing shared by fakestripe's objects (Stripe's error wording)."""

from __future__ import annotations

from typing import Any

from localstripe.errors import UserError
from localstripe.resources import List, store

DAY = 86_400


def unknown(kwargs: dict[str, Any]) -> None:
    if kwargs:
        raise UserError(400, f"Received unknown parameter: {', '.join(sorted(kwargs))}")


def bad(message: str, param: str | None = None) -> UserError:
    contents = {"param": param} if param else None
    return UserError(400, message, contents)


def string(value: Any, param: str, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise bad(f"Missing required param: {param}.", param)
        return None
    if not isinstance(value, str) or not value:
        raise bad(f"Invalid string: {param}", param)
    return value


def metadata_of(value: Any) -> dict[str, str]:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise bad("Invalid metadata", "metadata")
    return dict(value)


def all_of(cls: type[Any]) -> list[Any]:
    prefix = cls.object + ":"
    return [obj for key, obj in store.items() if key.startswith(prefix)]


def listing(cls: type[Any], url: str, items: list[Any], limit: Any, starting_after: Any) -> Any:
    li = List(url, limit=limit, starting_after=starting_after)
    li._list = sorted(items, key=lambda o: o.created, reverse=True)
    return li
