"""The production checklist, as far as a machine can check it (`catalytic preflight`)."""

from __future__ import annotations

from collections.abc import Callable

from shared.ops.preflight import host, peers
from shared.ops.preflight.env import ENV_CHECKS
from shared.ops.preflight.result import Options, Result

__all__ = ["Options", "Result", "env_results", "format_table", "run"]


def _crashed(check: Callable[..., object], exc: Exception) -> Result:
    name = check.__name__.removeprefix("check_").replace("_", " ")
    return Result(name, "fail", f"the check itself failed: {type(exc).__name__}: {exc}", "see the error")


def env_results(opts: Options) -> list[Result]:
    results = []
    for check in ENV_CHECKS:
        try:
            results.append(check(opts))
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
            results.append(_crashed(check, exc))
    return results


async def run(opts: Options) -> list[Result]:
    results = env_results(opts)
    for check in (
        peers.check_postgres,
        peers.check_migrations,
        peers.check_redis,
        peers.check_smtp,
        peers.check_sentry,
        peers.check_health,
    ):
        try:
            results.append(await check(opts))
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
            results.append(_crashed(check, exc))
    for host_check in (host.check_backup_schedule, host.check_backup_fresh):
        try:
            results.append(host_check(opts))
        except Exception as exc:  # noqa: BLE001
            results.append(_crashed(host_check, exc))
    return results


def format_table(results: list[Result]) -> str:
    width = max(len(r.name) for r in results)
    lines = [f"{'check'.ljust(width)}  status  detail"]
    for r in results:
        lines.append(f"{r.name.ljust(width)}  {r.status.upper():6}  {r.detail}")
        if r.fix:
            lines.append(f"{''.ljust(width)}  {'':6}  fix: {r.fix}")
    failed = sum(r.status == "fail" for r in results)
    lines.append(
        f"{len(results)} checks: {failed} failed" if failed else f"{len(results)} checks: none failed"
    )
    return "\n".join(lines)
