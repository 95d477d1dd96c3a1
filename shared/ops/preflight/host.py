"""Checks of the host itself: backups scheduled and recent."""

from __future__ import annotations

import time

from shared.ops import backup
from shared.ops.preflight.result import Options, Result, bad, ok

UNIT = "catalytic-backup.timer"
CRON = "catalytic-backup"


def check_backup_schedule(opts: Options) -> Result:
    name = "backup schedule"
    timer = opts.systemd_dir / UNIT
    enabled = opts.systemd_dir / "timers.target.wants" / UNIT
    cron = opts.cron_dir / CRON
    if enabled.exists():
        return ok(name, f"systemd timer enabled ({enabled})")
    if cron.exists():
        return ok(name, f"cron file present ({cron})")
    if timer.exists():
        return bad(name, f"{timer} is installed but not enabled", f"systemctl enable --now {UNIT}")
    return bad(
        name,
        f"neither {enabled} nor {cron} exists",
        f"install infra/systemd/catalytic-backup.* and `systemctl enable --now {UNIT}` (or infra/cron)",
    )


def check_backup_fresh(opts: Options) -> Result:
    name = "backup fresh"
    newest = backup.latest(opts.backup_dir) if opts.backup_dir.is_dir() else None
    if newest is None:
        return bad(name, f"no backup in {opts.backup_dir}", f"run `catalytic backup --dir {opts.backup_dir}`")
    age_h = (time.time() - newest.stat().st_mtime) / 3600
    if age_h > opts.max_backup_age_hours:
        limit = opts.max_backup_age_hours
        return bad(
            name,
            f"newest backup {newest.name} is {age_h:.1f} h old (limit {limit:g} h)",
            f"see `systemctl status catalytic-backup`; run `catalytic backup --dir {opts.backup_dir}`",
        )
    return ok(name, f"{newest.name}, {age_h:.1f} h old")
