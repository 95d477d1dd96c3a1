"""What a check returns, and what every check is given."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Status = Literal["pass", "fail", "skip"]


@dataclass(frozen=True)
class Result:
    name: str
    status: Status
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Options:
    env: Mapping[str, str]
    env_file: Path | None = None
    send_test_mail: str | None = None
    health_url: str | None = None
    backup_dir: Path = Path("/var/backups/catalytic")
    max_backup_age_hours: float = 26.0
    systemd_dir: Path = Path("/etc/systemd/system")
    cron_dir: Path = Path("/etc/cron.d")


def ok(name: str, detail: str) -> Result:
    return Result(name, "pass", detail)


def bad(name: str, detail: str, fix: str) -> Result:
    return Result(name, "fail", detail, fix)


def skip(name: str, detail: str) -> Result:
    return Result(name, "skip", detail)
