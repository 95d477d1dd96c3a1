"""Mixed traffic through the gateway of a running platform (bench/platform.py): the `rss` and `soak`
scenarios' load.

wrk (C, one thread) sends the bulk: authenticated reads with a JWT and with an API key, cycled
from a list; with `rate`, a LuaJIT clock paces the thread to that many requests per second
(open loop while connections are free), else as fast as the connections allow. Beside it, this
process sends what wrk cannot sign or should send rarely: logins (production argon2) and Stripe
webhooks signed when sent.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench import platform
from bench.gateway import ensure_wrk
from bench.procs import BenchError
from shared.devstack.fakestripe.signing import sign

PASSWORD = "Velvet-Orbit-Lantern-42"
_ERROR_KINDS = ("connect", "read", "write", "timeout", "non2xx")

_LUA = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
local reqs = {}
local i = 0
local interval = tonumber(os.getenv("BENCH_INTERVAL_MS") or "0")
local next_at = nil
init = function(args)
  for line in io.lines(args[1]) do
    local path, header, value = line:match("([^\\t]+)\\t([^\\t]+)\\t(.*)")
    table.insert(reqs, wrk.format("GET", path, {[header] = value}))
  end
end
request = function()
  i = i + 1
  return reqs[(i % #reqs) + 1]
end
delay = function()
  if interval <= 0 then return 0 end
  local t = now_ms()
  if next_at == nil or next_at < t - 1000 then next_at = t end  -- never burst to catch up
  next_at = next_at + interval
  local d = next_at - t
  if d < 0 then return 0 end
  return d
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, '
    .. '"timeout": %d, "non2xx": %d, "p50": %d, "p99": %d, "max": %d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@dataclass
class Caller:
    """One registered tenant owner: a JWT, an API key, the email to log in with."""

    email: str
    token: str
    api_key: str


@dataclass
class Tally:
    sent: int = 0
    errors: int = 0
    failures: list[str] = field(default_factory=list)

    def record(self, what: str, resp: httpx.Response, expected: int) -> None:
        self.sent += 1
        if resp.status_code != expected:
            self.errors += 1
            if len(self.failures) < 10:
                self.failures.append(f"{what}: {resp.status_code} {resp.text[:200]}")


async def register(gateway: str, count: int) -> list[Caller]:
    """`count` tenants, each with its owner's JWT and an API key, made through the gateway."""
    callers = []
    async with httpx.AsyncClient(base_url=gateway, timeout=60) as http:
        for i in range(count):
            email = f"load-{i}-{uuid.uuid4().hex[:8]}@bench.test"
            body = {"email": email, "password": PASSWORD, "company_name": f"Load {i}"}
            resp = await http.post("/auth/register", json=body)
            if resp.status_code != 201:
                raise BenchError(f"register: {resp.status_code} {resp.text[:300]}")
            token = resp.json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            resp = await http.post("/api-keys", json={"name": "load"}, headers=auth)
            if resp.status_code != 201:
                raise BenchError(f"api key: {resp.status_code} {resp.text[:300]}")
            callers.append(Caller(email, token, resp.json()["key"]))
    return callers


def requests_file(callers: list[Caller], directory: Path) -> Path:
    """The bulk mix: per tenant, /me and /usage/summary with the JWT, /me with the API key."""
    lines = []
    for c in callers:
        lines.append(f"/me\tauthorization\tBearer {c.token}")
        lines.append(f"/usage/summary\tauthorization\tBearer {c.token}")
        lines.append(f"/me\tx-api-key\t{c.api_key}")
    path = directory / "requests.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass(frozen=True)
class WrkRun:
    requests: int
    rps: float
    errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    error_kinds: dict[str, int]


def start_wrk(
    gateway: str, callers: list[Caller], connections: int, seconds: float, rate: float | None
) -> subprocess.Popen[str]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-traffic-"))
    script = tmp / "mixed.lua"
    script.write_text(_LUA)
    data = requests_file(callers, tmp)
    cmd = [ensure_wrk(), "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--timeout", "10s"]
    cmd += ["-s", str(script), f"{gateway}/me", "--", str(data)]
    env = {"BENCH_INTERVAL_MS": str(1000 / rate if rate else 0), "PATH": "/usr/bin:/bin"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_wrk(proc: subprocess.Popen[str]) -> WrkRun:
    out, err = proc.communicate(timeout=60)
    line = next((x for x in out.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise BenchError(f"wrk gave no summary: {out[-500:]} {err[-500:]}")
    got = json.loads(line[len("BENCH ") :])
    return WrkRun(
        requests=got["requests"],
        rps=got["requests"] / (got["duration_us"] / 1e6),
        errors=sum(got[k] for k in _ERROR_KINDS),
        p50_ms=got["p50"] / 1000,
        p99_ms=got["p99"] / 1000,
        max_ms=got["max"] / 1000,
        error_kinds={k: got[k] for k in _ERROR_KINDS},
    )


async def side_traffic(
    gateway: str, callers: list[Caller], seconds: float, logins_per_s: float, webhooks_per_s: float
) -> Tally:
    """Logins and signed Stripe webhooks (an event type billing stores and acknowledges) at a low rate."""
    tally = Tally()
    stop = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as http:

        async def logins() -> None:
            i = 0
            while time.monotonic() < stop:
                c = callers[i % len(callers)]
                resp = await http.post("/auth/login", json={"email": c.email, "password": PASSWORD})
                tally.record("login", resp, 200)
                i += 1
                await asyncio.sleep(1 / logins_per_s)

        async def webhooks() -> None:
            while time.monotonic() < stop:
                body = _stripe_event()
                headers = {
                    "Content-Type": "application/json",
                    "Stripe-Signature": sign(body, platform.WEBHOOK_SECRET),
                }
                resp = await http.post("/webhooks/stripe", content=body, headers=headers)
                tally.record("webhook", resp, 200)
                await asyncio.sleep(1 / webhooks_per_s)

        await asyncio.gather(logins(), webhooks())
    return tally


def _stripe_event() -> bytes:
    """An event billing verifies, stores once and marks ignored (no Stripe call behind it)."""
    event = {
        "id": f"evt_load{uuid.uuid4().hex[:20]}",
        "object": "event",
        "type": "customer.tax_id.created",
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": {"id": f"txi_{uuid.uuid4().hex[:10]}", "object": "tax_id"}},
    }
    return json.dumps(event).encode()
