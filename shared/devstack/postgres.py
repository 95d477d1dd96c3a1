"""A throwaway PostgreSQL cluster under <root>/pg, run by initdb/pg_ctl (as OS user `postgres` if root)."""

from __future__ import annotations

import logging
import os
import pwd
import shlex
import shutil
import subprocess
import time
from pathlib import Path

from shared.devstack.procs import DevStackError, port_open, with_tail

log = logging.getLogger("catalytic.devstack")

HOST = "127.0.0.1"
USER = "postgres"
PASSWORD = "postgres"  # noqa: S105 - throwaway local cluster
DATABASE = "catalytic"
READY_TIMEOUT = 60.0
FAST_OPTIONS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


def bin_dir() -> Path:
    """Directory with pg_ctl/initdb/pg_isready: $PG_BIN, the newest Debian install, or PATH."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name)
    )
    if candidates:
        return candidates[-1].parent
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    raise DevStackError("PostgreSQL server binaries not found (set PG_BIN or install postgresql)")


def psql_ok(url: str, timeout: int = 3) -> bool:
    """True if `select 1` works against `url` (used to decide whether DATABASE_URL can be reused)."""
    env = {**os.environ, "PGCONNECT_TIMEOUT": str(timeout)}
    try:
        argv = [str(bin_dir() / "psql"), url, "-XtAc", "select 1"]
        done = subprocess.run(argv, env=env, capture_output=True, timeout=timeout + 5, check=False)
    except (OSError, subprocess.TimeoutExpired, DevStackError):
        return False
    return done.returncode == 0 and done.stdout.strip() == b"1"


class PostgresCluster:
    def __init__(self, pg_dir: Path, log_dir: Path, port: int, *, fast: bool = False):
        self.pg_dir = pg_dir
        self.data_dir = pg_dir / "data"
        self.log_path = log_dir / "postgres.log"
        self.port = port
        self.fast = fast
        self.bin = bin_dir()
        self.as_root = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgresql://{USER}:{PASSWORD}@{HOST}:{self.port}/{DATABASE}"

    def start(self) -> bool:
        """Make sure the cluster runs and has the database. Returns True if we started it, False if reused."""
        self._prepare_dirs()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        started = not self._reuse_leftover()
        if started:
            if port_open(HOST, self.port):
                raise DevStackError(f"port {HOST}:{self.port} is already in use{_holder_hint(self.port)}")
            self._pg_ctl_start()
        try:
            self._wait_ready()
            self._create_database()
        except BaseException:
            if started:  # the caller will not know it owns this cluster, so do not leave it running
                self.stop()
            raise
        how = "started" if started else "reusing a cluster left running earlier (not stopped on exit)"
        log.info("postgres: %s on %s:%d (%s)", how, HOST, self.port, self.data_dir)
        return started

    def stop(self) -> None:
        if self._status() == 0:
            done = self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60", "stop")
            if done.returncode != 0:
                raise DevStackError(
                    with_tail(f"pg_ctl stop failed: {done.stdout}{done.stderr}", self.log_path)
                )

    # -- helpers -------------------------------------------------------------------------------

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bin / tool), *args]
        if self.as_root:  # initdb and postgres refuse to run as root
            argv = ["runuser", "-u", USER, "--", *argv]
        # cwd inside pg_dir: the postgres user may not be able to getcwd() in the caller's directory.
        return subprocess.run(argv, cwd=self.pg_dir, capture_output=True, text=True, check=False)

    def _prepare_dirs(self) -> None:
        self.pg_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.touch()
        if self.as_root:
            try:
                owner = pwd.getpwnam(USER)
            except KeyError:
                raise DevStackError(
                    "running as root but there is no `postgres` OS user to run the cluster"
                ) from None
            for path in (self.pg_dir, self.log_path):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            probe = ["runuser", "-u", USER, "--", "test", "-w", str(self.pg_dir)]
            if subprocess.run(probe, check=False).returncode:
                raise DevStackError(
                    f"the postgres OS user cannot reach {self.pg_dir}; use a devstack root whose parent "
                    "directories are world-searchable (e.g. under /tmp via tempfile.mkdtemp + chmod 755)"
                )

    def _initdb(self) -> None:
        # initdb into a side directory and rename, so a crash mid-initdb never leaves a half cluster.
        staging = self.pg_dir / "data.init"
        pwfile = self.pg_dir / "pwfile"
        shutil.rmtree(staging, ignore_errors=True)
        pwfile.write_text(PASSWORD + "\n")
        if self.as_root:
            owner = pwd.getpwnam(USER)
            os.chown(pwfile, owner.pw_uid, owner.pw_gid)
        try:
            args = ["-D", str(staging), "-U", USER, f"--pwfile={pwfile}", "-E", "UTF8"]
            args += ["--auth-local=trust", "--auth-host=scram-sha-256", "--no-instructions"]
            done = self._run("initdb", *args, "--locale=C.UTF-8")
            if done.returncode != 0:  # C.UTF-8 missing on some systems: plain C is fine for dev
                shutil.rmtree(staging, ignore_errors=True)
                done = self._run("initdb", *args, "--locale=C")
            if done.returncode != 0:
                raise DevStackError(f"initdb failed:\n{done.stdout}{done.stderr}")
        finally:
            pwfile.unlink(missing_ok=True)
        staging.rename(self.data_dir)

    def _status(self) -> int:
        """pg_ctl status exit code: 0 running, 3 not running, 4 no data dir."""
        return self._run("pg_ctl", "-D", str(self.data_dir), "status").returncode

    def _pid_file(self) -> list[str]:
        try:
            return (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return []

    def _reuse_leftover(self) -> bool:
        """Deal with a cluster left by a crashed run: reuse it if it serves our port, else stop it.

        Also drops a stale postmaster.pid whose PID now belongs to some other process
        (pg_ctl status only checks that the PID is alive)."""
        lines = self._pid_file()
        if not lines or self._status() != 0:
            return False  # no pid file, or a dead PID in it: postgres itself ignores that one
        if not lines[0].isdigit() or not _is_postgres(int(lines[0])):
            (self.data_dir / "postmaster.pid").unlink()
            return False
        if len(lines) > 3 and lines[3] == str(self.port) and self._ready_within(READY_TIMEOUT):
            return True
        log.info("postgres: restarting a leftover cluster in %s on port %d", self.data_dir, self.port)
        done = self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
        if done.returncode != 0:
            raise DevStackError(f"cannot stop leftover cluster {self.data_dir}: {done.stdout}{done.stderr}")
        return False

    def _pg_ctl_start(self) -> None:
        socket_dir = str(self.pg_dir)
        if len(socket_dir) > 90:  # unix socket paths are limited to ~107 bytes; TCP is all we need anyway
            socket_dir = ""
        opts = ["-p", str(self.port), "-c", f"listen_addresses={HOST}", "-k", shlex.quote(socket_dir)]
        settings = ["max_connections=200", *(FAST_OPTIONS if self.fast else ())]
        for setting in settings:
            opts += ["-c", setting]
        args = ["-D", str(self.data_dir), "-l", str(self.log_path), "-w", "-t", str(int(READY_TIMEOUT))]
        done = self._run("pg_ctl", *args, "-o", " ".join(opts), "start")
        if done.returncode != 0:
            raise DevStackError(
                with_tail(f"pg_ctl start failed: {done.stdout}{done.stderr}".strip(), self.log_path)
            )

    def _isready(self) -> bool:
        argv = [str(self.bin / "pg_isready"), "-q", "-h", HOST, "-p", str(self.port), "-t", "2"]
        return subprocess.run(argv, check=False).returncode == 0

    def _ready_within(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self._isready():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def _wait_ready(self) -> None:
        if not self._ready_within(READY_TIMEOUT):
            message = f"postgres: not ready on port {self.port} after {READY_TIMEOUT:.0f}s"
            raise DevStackError(with_tail(message, self.log_path))

    def _create_database(self) -> None:
        def psql(sql: str) -> subprocess.CompletedProcess[str]:
            admin_url = self.url.rsplit("/", 1)[0] + "/postgres"
            argv = [str(self.bin / "psql"), admin_url, "-XtAc", sql]
            return subprocess.run(argv, capture_output=True, text=True, check=False)

        found = psql(f"select 1 from pg_database where datname = '{DATABASE}'")
        if found.returncode != 0:
            raise DevStackError(f"postgres: cannot query pg_database: {found.stderr.strip()}")
        if found.stdout.strip() != "1":
            made = psql(f"create database {DATABASE}")
            if made.returncode != 0 and "already exists" not in made.stderr:
                raise DevStackError(f"postgres: create database {DATABASE} failed: {made.stderr.strip()}")


def _is_postgres(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() in {"postgres", "postmaster"}
    except OSError:
        return False


def _holder_hint(port: int) -> str:
    """Name the postmaster (e.g. from a crashed earlier run with another root) that holds `port`."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if Path(argv[0]).name == "postgres" and "-D" in argv and f"-p{port}" in "".join(argv):
            data = argv[argv.index("-D") + 1]
            return f" by a postgres cluster in {data}; stop it with: pg_ctl -D {data} -m fast stop"
    return "; stop whatever listens there or pick another port"
