"""`catalytic backup` / `catalytic restore`: every service schema in one gzip'd SQL dump."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from shared.devstack.postgres import bin_dir
from shared.platform import SERVICES

PREFIX = "catalytic-"
SUFFIX = ".sql.gz"


class BackupError(Exception):
    pass


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidate = bin_dir() / name
    if candidate.exists():
        return str(candidate)
    raise BackupError(f"{name} not found; install the PostgreSQL client (postgresql-client)")


def schemas() -> list[str]:
    return [s.schema for s in SERVICES.values() if s.schema]


def backup(database_url: str, directory: Path, *, retention_days: int = 14) -> Path:
    """Dump every service schema to `directory`, then delete dumps older than the retention."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = directory / f"{PREFIX}{stamp}{SUFFIX}"
    partial = target.with_suffix(".partial")
    args = [_tool("pg_dump"), "--dbname", database_url, "--no-password", "--quote-all-identifiers"]
    for schema in schemas():
        args += ["--schema", schema]
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        with gzip.open(partial, "wb", compresslevel=6) as out:
            shutil.copyfileobj(proc.stdout, out, 1 << 20)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed: {err.strip()[-2000:]}")
    partial.chmod(0o600)
    partial.rename(target)  # a backup file either is complete or does not exist
    prune(directory, retention_days)
    return target


def prune(directory: Path, retention_days: int) -> list[Path]:
    cutoff = time.time() - retention_days * 86_400
    removed = [p for p in directory.glob(f"{PREFIX}*{SUFFIX}") if p.stat().st_mtime < cutoff]
    for path in removed:
        path.unlink()
    return removed


def latest(directory: Path) -> Path | None:
    dumps = sorted(directory.glob(f"{PREFIX}*{SUFFIX}"))
    return dumps[-1] if dumps else None


def restore(database_url: str, dump: Path) -> None:
    """Load a dump into a database that does not hold these schemas yet."""
    args = [
        _tool("psql"),
        "--dbname",
        database_url,
        "--no-password",
        "--quiet",
        "--set",
        "ON_ERROR_STOP=1",
        "--single-transaction",
    ]
    # psql reads the decompressed stream; a gzip file object would hand it the compressed fd.
    with (
        gzip.open(dump, "rb") as source,
        subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        ) as proc,
    ):
        assert proc.stdin is not None and proc.stderr is not None
        try:
            shutil.copyfileobj(source, proc.stdin, 1 << 20)
        except BrokenPipeError:
            pass  # psql stopped on an error; its message follows
        finally:
            proc.stdin.close()
        err = proc.stderr.read().decode(errors="replace")
    if proc.returncode != 0:
        raise BackupError(f"restore failed: {err.strip()[-2000:]}")
