"""SMTP sink for dev/tests: every accepted mail becomes one .eml file, with optional failure injection.

Run as `python -m shared.devstack.mailcatcher --host H --port P --dir DIR [--control FILE]`.
The control file (JSON, re-read for every message; missing/invalid = accept all) may hold
  reject_rcpt_regex: recipients matching it are refused at RCPT with `reject_code` (default 550)
  tempfail_count:    the next N DATA commands get 451; N is decremented in the file each time
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import sys
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.devstack.procs import Child

TEMPFAIL = "451 4.3.0 try again later"


def read_control(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_atomic(path: Path, data: bytes) -> None:
    # Readers (tests polling the dir) must never see a half-written file.
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class CatchHandler:
    """aiosmtpd handler: RCPT/DATA hooks consult the control file, DATA writes the .eml."""

    def __init__(self, mail_dir: Path, control: Path):
        self.mail_dir = mail_dir
        self.control = control
        self.lock = threading.Lock()  # serialises tempfail_count read-modify-write

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        conf = read_control(self.control)
        pattern = conf.get("reject_rcpt_regex")
        if isinstance(pattern, str) and pattern:
            try:
                matched = re.search(pattern, address) is not None
            except re.error:
                matched = False
            if matched:
                code = int(conf.get("reject_code", 550))
                return f"{code} {code // 100}.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self._take_tempfail():
            return TEMPFAIL
        header = f"X-Envelope-From: {envelope.mail_from}\r\nX-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n"
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        target = self.mail_dir / f"{stamp}-{uuid.uuid4().hex}.eml"
        write_atomic(target, header.encode() + bytes(envelope.original_content or b""))
        return "250 Message accepted for delivery"

    def _take_tempfail(self) -> bool:
        with self.lock:
            conf = read_control(self.control)
            count = conf.get("tempfail_count")
            if not isinstance(count, int) or count <= 0:
                return False
            conf["tempfail_count"] = count - 1
            write_atomic(self.control, json.dumps(conf).encode())
            return True


def smtp_ready(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            return sock.recv(64).startswith(b"220")
    except OSError:
        return False


def start_mailcatcher(host: str, port: int, mail_dir: Path, control: Path, log_dir: Path) -> Child:
    """Spawn this module as a subprocess and wait for its SMTP banner."""
    argv = [sys.executable, "-m", "shared.devstack.mailcatcher", "--host", host, "--port", str(port)]
    argv += ["--dir", str(mail_dir), "--control", str(control)]
    # The child must import `shared` even when the caller got it via sys.path tweaks, not an install.
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    child = Child("mailcatcher", argv, log_dir / "mailcatcher.log", env=env)
    child.wait_ready(lambda: smtp_ready(host, port), 20.0, f"SMTP banner on port {port}")
    return child


def main(argv: list[str] | None = None) -> None:
    from aiosmtpd.controller import Controller

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--control", type=Path, default=None)
    args = parser.parse_args(argv)
    mail_dir: Path = args.dir.resolve()
    mail_dir.mkdir(parents=True, exist_ok=True)
    control: Path = args.control or mail_dir.parent / "smtp-control.json"

    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    controller = Controller(CatchHandler(mail_dir, control), hostname=args.host, port=args.port)
    controller.start()
    print(f"mailcatcher: listening on {args.host}:{args.port}, writing {mail_dir}", flush=True)
    try:
        while not stopping.wait(1.0):
            pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
