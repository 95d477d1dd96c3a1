"""Close dependencies already opened when a later one fails while resolving.

Litestar (2.x) resolves a handler's dependencies in batches and hands the cleanup of
generator dependencies to the handler call only once all of them resolved. If one raises
during resolution (the `admin` check refusing a caller after the request's `tx` dependency
opened its transaction), the generators that already ran are never resumed: the connection
stays "idle in transaction" and a handful of refused requests drain the pool. This is the
same resolution loop, plus throwing the failure into those generators (rolling back) first.
"""

from __future__ import annotations

from typing import Any

from anyio import create_task_group
from litestar._kwargs.cleanup import DependencyCleanupGroup
from litestar._kwargs.dependencies import resolve_dependency
from litestar._kwargs.kwargs_model import KwargsModel
from litestar.utils.helpers import get_exception_group

_ExceptionGroup = get_exception_group()


async def _resolve_dependencies(
    self: KwargsModel, connection: Any, kwargs: dict[str, Any]
) -> DependencyCleanupGroup:
    group = DependencyCleanupGroup()
    try:
        for batch in self.dependency_batches:
            if len(batch) == 1:
                await resolve_dependency(next(iter(batch)), connection, kwargs, group)
                continue
            try:
                async with create_task_group() as tasks:
                    for dependency in batch:
                        tasks.start_soon(resolve_dependency, dependency, connection, kwargs, group)
            except _ExceptionGroup as errors:
                raise errors.exceptions[0] from errors  # type: ignore[attr-defined]
    except Exception as exc:
        await group.close(exc)
        raise
    return group


def install() -> None:
    """Idempotent; the app factory calls it."""
    KwargsModel.resolve_dependencies = _resolve_dependencies  # type: ignore[method-assign]
