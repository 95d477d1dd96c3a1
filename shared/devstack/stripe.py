"""localstripe (a fake Stripe API) as a subprocess; kept tiny so a richer fake can replace it."""

from __future__ import annotations

import http.client
import sys
from pathlib import Path

from shared.devstack.procs import Child

HOST = "127.0.0.1"
READY_TIMEOUT = 20.0


def http_answers(host: str, port: int) -> bool:
    """True if anything HTTP answers on host:port (the status does not matter)."""
    conn = http.client.HTTPConnection(host, port, timeout=1.0)
    try:
        conn.request("GET", "/")
        conn.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def start_localstripe(port: int, log_dir: Path, *, from_scratch: bool = True) -> Child:
    """Start localstripe on `port` and wait until it answers HTTP.

    localstripe persists its state in the global /tmp/localstripe.pickle; `from_scratch`
    ignores that file on start (tests want a clean fake, dev may want its customers back)."""
    script = Path(sys.executable).parent / "localstripe"  # same venv as this interpreter
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "localstripe"]
    argv += ["--port", str(port)]
    if from_scratch:
        argv.append("--from-scratch")
    child = Child("localstripe", argv, log_dir / "localstripe.log")
    child.wait_ready(lambda: http_answers(HOST, port), READY_TIMEOUT, f"HTTP answer on port {port}")
    return child
