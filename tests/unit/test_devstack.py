"""DevStack starts real local peers (Postgres, Redis, mail catcher, localstripe) and stops them again."""

from __future__ import annotations

import email
import json
import shutil
import smtplib
import socket
import subprocess
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from shared.devstack import DevEnv, DevStack, DevStackError, Ports
from shared.devstack import redis as devredis
from shared.devstack.procs import port_open
from tests.conftest import SLOT

PORTS = Ports(
    postgres=55532 + 10 * SLOT, redis=56479 + 10 * SLOT, smtp=1125 + 10 * SLOT, stripe=8520 + 10 * SLOT
)


def psql_select_1(url: str) -> str:
    done = subprocess.run(
        ["/usr/bin/psql", url, "-tAc", "select 1"], capture_output=True, text=True, timeout=30, check=False
    )
    return done.stdout.strip() or done.stderr


def redis_ping(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64)


def send_mail(env: DevEnv, to: str, subject: str) -> None:
    msg = EmailMessage()
    msg["From"] = "noreply@catalytic.test"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content("hello from the devstack test")
    with smtplib.SMTP(env.smtp_host, env.smtp_port, timeout=10) as smtp:
        smtp.send_message(msg)


def wait_for_mails(mail_dir: Path, count: int, timeout: float = 10.0) -> list[Path]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(mail_dir.glob("*.eml"))
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"expected {count} mails in {mail_dir}, found {list(mail_dir.glob('*'))}")


@pytest.fixture
def stack_root() -> Path:
    # Not tmp_path: pytest's base temp dir is 0700, so the `postgres` OS user (used when we are root)
    # could not reach a cluster inside it.
    root = Path(tempfile.mkdtemp(prefix="devstack-test-"))
    root.chmod(0o755)
    yield root  # type: ignore[misc]
    shutil.rmtree(root, ignore_errors=True)


def test_devstack_end_to_end(stack_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    busy = [port for port in vars(PORTS).values() if port_open("127.0.0.1", port)]
    assert not busy, f"test ports already in use: {busy}"

    stack = DevStack(stack_root, PORTS, fast=True)
    try:
        env = stack.start()
        assert stack.start() is env  # idempotent
        assert env.database_url == f"postgresql://postgres:postgres@127.0.0.1:{PORTS.postgres}/catalytic"
        assert env.as_env()["SMTP_PORT"] == str(PORTS.smtp)

        assert psql_select_1(env.database_url) == "1"
        assert redis_ping(PORTS.redis).startswith(b"+PONG")

        send_mail(env, "alice@example.com", "Welcome to catalytic")
        [mail] = wait_for_mails(env.mail_dir, 1)
        parsed = email.message_from_bytes(mail.read_bytes())
        assert parsed["Subject"] == "Welcome to catalytic"
        assert parsed["X-Envelope-To"] == "alice@example.com"
        assert parsed["X-Envelope-From"] == "noreply@catalytic.test"

        # failure injection: rejected recipient at RCPT, then one temporary DATA failure
        stack.smtp_control_path.write_text(json.dumps({"reject_rcpt_regex": "^bounce@"}))
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            send_mail(env, "bounce@example.com", "should bounce")
        assert refused.value.recipients["bounce@example.com"][0] == 550
        stack.smtp_control_path.write_text(json.dumps({"tempfail_count": 1}))
        with pytest.raises(smtplib.SMTPDataError) as tempfail:
            send_mail(env, "bob@example.com", "deferred")
        assert tempfail.value.smtp_code == 451
        assert json.loads(stack.smtp_control_path.read_text())["tempfail_count"] == 0
        send_mail(env, "bob@example.com", "second try")
        assert len(wait_for_mails(env.mail_dir, 2)) == 2

        with socket.create_connection(("127.0.0.1", PORTS.stripe), timeout=5) as sock:
            sock.sendall(b"GET /v1/customers HTTP/1.0\r\nHost: localhost\r\n\r\n")
            assert sock.recv(64).startswith(b"HTTP/1.")

        stack.restart_redis()
        assert redis_ping(PORTS.redis).startswith(b"+PONG")
        stack.kill_redis_data()
        assert redis_ping(PORTS.redis).startswith(b"+PONG")
        stack.restart_postgres()
        assert psql_select_1(env.database_url) == "1"
    finally:
        stack.stop()
    stack.stop()  # safe twice
    still_open = [port for port in vars(PORTS).values() if port_open("127.0.0.1", port)]
    assert not still_open, f"ports still open after stop(): {still_open}"


def test_as_env_names() -> None:
    env = DevEnv("postgresql://x/catalytic", "redis://r/0", "127.0.0.1", 1025, Path("/m"), "http://s")
    assert env.as_env() == {
        "DATABASE_URL": "postgresql://x/catalytic",
        "REDIS_URL": "redis://r/0",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": "1025",
        "DEV_MAIL_DIR": "/m",
        "STRIPE_API_BASE": "http://s",
    }


def test_missing_redis_server_without_root_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devredis.shutil, "which", lambda _name: None)
    monkeypatch.setattr(devredis.os, "geteuid", lambda: 1000)
    with pytest.raises(DevStackError, match="redis-server is not installed"):
        devredis.redis_server_binary()


def test_missing_redis_server_as_root_installs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    installed = {"done": False}

    def fake_run(argv: list[str], **_kw: object) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        installed["done"] = argv[:2] == ["apt-get", "install"]
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(devredis.os, "geteuid", lambda: 0)
    monkeypatch.setattr(devredis.subprocess, "run", fake_run)
    monkeypatch.setattr(
        devredis.shutil, "which", lambda _n: "/usr/bin/redis-server" if installed["done"] else None
    )
    assert devredis.redis_server_binary() == "/usr/bin/redis-server"
    assert calls == [["apt-get", "install", "-y", "-q", "redis-server"]]


def test_port_in_use_is_refused(stack_root: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        server = devredis.RedisServer(stack_root / "redis", stack_root / "logs", busy.getsockname()[1])
        with pytest.raises(DevStackError, match="already in use"):
            server.start()
