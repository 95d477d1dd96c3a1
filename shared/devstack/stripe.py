"""The fake Stripe (localstripe extended by shared.devstack.fakestripe) as a subprocess."""

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
    """Start the fake Stripe on `port` and wait until it answers HTTP.

    localstripe alone keeps its state in the global /tmp/localstripe.pickle; the fake keeps it
    per stack, in `<stack root>/fakestripe.pickle`. `from_scratch` (tests) starts empty and
    keeps nothing; otherwise (dev) the customers and subscriptions of the last run come back."""
    argv = [sys.executable, "-m", "shared.devstack.fakestripe", "--host", HOST, "--port", str(port)]
    if from_scratch:
        argv.append("--from-scratch")
    else:
        argv += ["--state", str(log_dir.parent / "fakestripe.pickle")]
    child = Child("localstripe", argv, log_dir / "localstripe.log")
    child.wait_ready(lambda: http_answers(HOST, port), READY_TIMEOUT, f"HTTP answer on port {port}")
    return child
