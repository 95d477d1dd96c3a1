"""Scenario `gateway`: a trivial upstream called directly vs through the gateway.

Through the gateway three ways: with a JWT, with an API key (limits off), and with a JWT and rate
limiting + quota on (one Redis round trip per request; 64 Enterprise tenants so the limiter runs
without refusing). Each is measured twice with wrk (C, so the load generator is not the
bottleneck: `direct_rps`, wrk against the trivial upstream, is its capacity floor): sequentially
(1 connection) for the latency the gateway adds, and with THROUGHPUT_CONNECTIONS connections for
requests per second. Figures are medians of REPEATS runs with min and max.

The gateway runs `catalytic serve gateway --workers N`, one process per core (BENCH_GATEWAY_WORKERS
overrides): the whole machine. Its throughput is also given as a ratio to a bare Litestar JSON
endpoint served by the same server with the same workers (`litestar_rps`), measured in the same
round, so a noisy machine moves both. The upstream is a raw ASGI app under uvicorn (as every
service runs). It also answers identity's two gateway-facing endpoints (JWKS, API-key
verification) so this scenario needs no Postgres; both answers are cached by the gateway after
the first request, so they are off the measured path.

`overhead_p50_ms`/`overhead_p99_ms` are the worst of the three ways in each round; `auth_rps` is
the JWT way at full load, `auth_rps_ratio` that over `litestar_rps`. The sequential percentiles
are drawn in docs/img/gateway-latency.png (bench/chart.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import chart
from bench.common import REPO, Figure, free_port, repeated
from shared.devstack import DevEnv

REPEATS = 3
LATENCY_SECONDS = 5
THROUGHPUT_SECONDS = 8
THROUGHPUT_CONNECTIONS = 32
WARMUP_SECONDS = 1
TENANTS = 64
ROOT = REPO / ".dev" / "bench" / "gateway"
# One gateway process per core, as on a production host (the gateway keeps no shared in-process
# state that matters across processes: caches are per process, limits and revocations in Redis).
GATEWAY_WORKERS = int(os.environ.get("BENCH_GATEWAY_WORKERS", str(os.cpu_count() or 1)))

WAYS = ("jwt", "api_key", "jwt_rate_limited")  # through the gateway
TARGETS = ("direct", *WAYS, "litestar")
PERCENTILES = ("p50", "p90", "p99", "p999")
METRICS = (
    "gateway/overhead_p50_ms",
    "gateway/overhead_p99_ms",
    "gateway/auth_rps",
    "gateway/auth_rps_ratio",
    "gateway/auth_errors",
    *(
        f"gateway/{t}_{m}"
        for t in TARGETS
        for m in (
            "seq_p50_ms",
            "seq_p90_ms",
            "seq_p99_ms",
            "seq_p999_ms",
            "rps",
            "p50_ms",
            "p99_ms",
            "errors",
        )
    ),
    *(f"gateway/{w}_{m}" for w in WAYS for m in ("overhead_p50_ms", "overhead_p99_ms", "rps_ratio")),
)

SETTINGS: dict[str, Any] = {
    "repeats": REPEATS,
    "load_generator": "wrk 4.1 (1 thread); latency: 1 connection, sequential; throughput: "
    f"{THROUGHPUT_CONNECTIONS} connections",
    "latency_seconds": LATENCY_SECONDS,
    "throughput_seconds": THROUGHPUT_SECONDS,
    "warmup_seconds": WARMUP_SECONDS,
    "gateway": f"`catalytic serve gateway --workers {GATEWAY_WORKERS}` (uvicorn, uvloop, httptools); "
    "LOG_LEVEL=WARNING, LOG_FORMAT=json, access log: errors (the default)",
    "litestar_baseline": f"one GET returning a JSON object, uvicorn with the same options, {GATEWAY_WORKERS} "
    "worker(s)",
    "upstream": "raw ASGI app, uvicorn (uvloop, httptools), one process",
    "rate_limited_tenants": TENANTS,
    "overhead": "through-gateway minus direct, same percentile, sequential runs",
}

_LUA = """
local values = {}
local header = os.getenv("BENCH_HEADER")
local cap = tonumber(os.getenv("BENCH_MAX_REQUESTS") or "0")
local i = 0
local answered = 0
init = function(args)
  for line in io.lines(args[1]) do table.insert(values, line) end
end
request = function()
  i = i + 1
  return wrk.format(nil, nil, {[header] = values[(i % #values) + 1]})
end
if cap > 0 then
  response = function(status, headers, body)
    answered = answered + 1
    if answered >= cap then wrk.thread:stop() end
  end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "errors": %d, "non2xx": %d, '
    .. '"p50": %d, "p90": %d, "p95": %d, "p99": %d, "p999": %d, "max": %d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
"""


# --- the trivial upstream (also serving identity's gateway-facing contract) ------------------------


def upstream() -> Any:
    """ASGI factory for `uvicorn --factory bench.gateway:upstream`."""
    from shared.auth.tokens import TokenSigner

    pem = Path(os.environ["JWT_PRIVATE_KEY_FILE"]).read_text()
    jwks = json.dumps(TokenSigner(pem, issuer="catalytic-identity", audience="catalytic-api").jwks()).encode()
    verification = os.environ.get("BENCH_KEY_VERIFICATION", "{}").encode()
    ok = b'{"ok":true}'

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope["path"]
        if path == "/.well-known/jwks.json":
            body = jwks
        elif path == "/internal/api-keys/verify":
            body = verification
        else:
            body = ok
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def litestar_app() -> Any:
    """ASGI factory: the bare Litestar JSON endpoint the gateway's throughput is compared with."""
    from litestar import Litestar, get

    @get("/bench", sync_to_thread=False)
    def bench() -> dict[str, bool]:
        return {"ok": True}

    @get("/health", sync_to_thread=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return Litestar([bench, health], debug=False)


# --- process handling --------------------------------------------------------------------------


def ensure_wrk() -> str:
    """wrk from Debian's package, installed on first use (root on these machines)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit("the gateway benchmark needs wrk: sudo apt-get install -y wrk")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(["apt-get", "install", "-y", "wrk"], env=env, check=False, **quiet).returncode:  # type: ignore[call-overload]
        subprocess.run(["apt-get", "update"], env=env, check=True, **quiet)  # type: ignore[call-overload]
        subprocess.run(["apt-get", "install", "-y", "wrk"], env=env, check=True, **quiet)  # type: ignore[call-overload]
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk could not be installed")
    return found


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} process exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up")
        time.sleep(0.1)


@contextmanager
def process(name: str, args: list[str], env: dict[str, str], health: str) -> Iterator[str]:
    logs = ROOT / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / f"{name}.log").open("ab") as out:
        proc = subprocess.Popen(  # our own interpreter and modules
            [sys.executable, *args], env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, cwd=REPO
        )
        try:
            wait_up(health, proc)
            yield health
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def serve_upstream(env: dict[str, str], port: int) -> Any:
    args = ["-m", "uvicorn", "bench.gateway:upstream", "--factory", "--port", str(port)]
    args += ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--lifespan", "off"]
    args += ["--log-level", "warning"]
    return process(f"upstream-{port}", args, env, f"http://127.0.0.1:{port}/health")


def serve_gateway(env: dict[str, str], port: int, name: str) -> Any:
    args = ["-m", "shared.cli", "serve", "gateway", "--port", str(port), "--workers", str(GATEWAY_WORKERS)]
    return process(name, args, env, f"http://127.0.0.1:{port}/health")


def serve_litestar(env: dict[str, str], port: int) -> Any:
    """The same server options as `catalytic serve` (shared/cli.py), the same number of workers."""
    args = ["-m", "uvicorn", "bench.gateway:litestar_app", "--factory", "--port", str(port)]
    args += ["--workers", str(GATEWAY_WORKERS), "--loop", "uvloop", "--http", "httptools"]
    args += ["--no-access-log", "--no-server-header", "--log-level", "warning"]
    return process(f"litestar-{port}", args, env, f"http://127.0.0.1:{port}/health")


# --- measuring ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    rps: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    p999_ms: float
    errors: int
    requests: int


def wrk(
    url: str, header: str, values: list[str], connections: int, seconds: float, max_requests: int = 0
) -> Run:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bench.lua"
        script.write_text(_LUA)
        data = Path(tmp) / "values.txt"
        data.write_text("\n".join(values) + "\n")
        cmd = [ensure_wrk(), "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
        cmd += ["-s", str(script), url, "--", str(data)]
        done = subprocess.run(
            cmd,
            env={**os.environ, "BENCH_HEADER": header, "BENCH_MAX_REQUESTS": str(max_requests)},
            capture_output=True,
            text=True,
            check=True,
        )
    line = next(x for x in done.stdout.splitlines() if x.startswith("BENCH "))
    got = json.loads(line[len("BENCH ") :])
    return Run(
        rps=got["requests"] / (got["duration_us"] / 1e6),
        p50_ms=got["p50"] / 1000,
        p90_ms=got["p90"] / 1000,
        p95_ms=got["p95"] / 1000,
        p99_ms=got["p99"] / 1000,
        p999_ms=got["p999"] / 1000,
        errors=got["errors"] + got["non2xx"],
        requests=got["requests"],
    )


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    header: str
    values: list[str]


def measure(targets: list[Target]) -> dict[str, list[float]]:
    series: dict[str, list[float]] = {}

    def add(metric: str, value: float) -> None:
        series.setdefault(metric, []).append(value)

    for t in targets:  # warm: connections, caches, JIT-less but still
        wrk(t.url, t.header, t.values, THROUGHPUT_CONNECTIONS, WARMUP_SECONDS)
    for _ in range(REPEATS):
        sequential = {t.name: wrk(t.url, t.header, t.values, 1, LATENCY_SECONDS) for t in targets}
        loaded = {
            t.name: wrk(t.url, t.header, t.values, THROUGHPUT_CONNECTIONS, THROUGHPUT_SECONDS)
            for t in targets
        }
        direct_seq, direct_load = sequential["direct"], loaded["direct"]
        for name, seq in sequential.items():
            load = loaded[name]
            add(f"{name}_seq_p50_ms", seq.p50_ms)
            add(f"{name}_seq_p90_ms", seq.p90_ms)
            add(f"{name}_seq_p99_ms", seq.p99_ms)
            add(f"{name}_seq_p999_ms", seq.p999_ms)
            add(f"{name}_rps", load.rps)
            add(f"{name}_p50_ms", load.p50_ms)
            add(f"{name}_p99_ms", load.p99_ms)
            add(f"{name}_errors", seq.errors + load.errors)
            if name in WAYS:
                add(f"{name}_overhead_p50_ms", seq.p50_ms - direct_seq.p50_ms)
                add(f"{name}_overhead_p99_ms", seq.p99_ms - direct_seq.p99_ms)
                add(f"{name}_rps_ratio", load.rps / direct_load.rps)
        # The contract's names: the worst way's overhead, the JWT way's throughput against Litestar.
        add("overhead_p50_ms", max(sequential[w].p50_ms for w in WAYS) - direct_seq.p50_ms)
        add("overhead_p99_ms", max(sequential[w].p99_ms for w in WAYS) - direct_seq.p99_ms)
        add("auth_rps", loaded["jwt"].rps)
        add("auth_rps_ratio", loaded["jwt"].rps / loaded["litestar"].rps)
        add("auth_errors", loaded["jwt"].errors)
    return series


def _unit(metric: str) -> str:
    if metric.endswith("_ms"):
        return "ms"
    if metric.endswith("_rps"):
        return "req/s"
    if metric.endswith("_errors"):
        return "count"
    return "ratio"


def base_env(env: DevEnv) -> dict[str, str]:
    from shared.setup import local_keys_env

    keys = local_keys_env(ROOT / "keys", "test")
    return {
        **keys,
        "REDIS_URL": env.redis_url,
        "APP_ENV": "test",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
    }


def run(env: DevEnv) -> list[Figure]:
    from shared.auth import apikeys
    from shared.auth.tokens import TokenSigner

    ensure_wrk()
    common = base_env(env)
    key = apikeys.generate("live")
    tenant = str(uuid.uuid4())
    verification = {
        "key_id": str(uuid.uuid4()),
        "tenant_id": tenant,
        "scopes": ["bench"],
        "plan": "enterprise",
    }
    up_port, open_port, limited_port, bare_port = free_port(), free_port(), free_port(), free_port()
    upstream_url = f"http://127.0.0.1:{up_port}"
    gateway_env = {
        **common,
        "GATEWAY_IDENTITY_URL": upstream_url,
        "GATEWAY_UPSTREAMS": json.dumps([{"name": "bench", "prefix": "/bench", "url": upstream_url}]),
    }
    signer = TokenSigner(
        Path(common["JWT_PRIVATE_KEY_FILE"]).read_text(),
        issuer="catalytic-identity",
        audience="catalytic-api",
    )
    one_token = signer.issue(user_id=str(uuid.uuid4()), tenant_id=tenant, role="owner", plan="enterprise")[0]
    tokens = [
        "Bearer "
        + signer.issue(
            user_id=str(uuid.uuid4()), tenant_id=str(uuid.uuid4()), role="owner", plan="enterprise"
        )[0]
        for _ in range(TENANTS)
    ]
    with (
        serve_upstream({**common, "BENCH_KEY_VERIFICATION": json.dumps(verification)}, up_port),
        serve_gateway({**gateway_env, "GATEWAY_RATE_LIMITS": "false"}, open_port, "gateway-open"),
        serve_gateway({**gateway_env, "GATEWAY_RATE_LIMITS": "true"}, limited_port, "gateway-limited"),
        serve_litestar(common, bare_port),
    ):
        gw, limited = f"http://127.0.0.1:{open_port}", f"http://127.0.0.1:{limited_port}"
        targets = [
            Target("direct", f"{upstream_url}/bench", "x-bench", ["1"]),
            Target("jwt", f"{gw}/bench", "authorization", [f"Bearer {one_token}"]),
            Target("api_key", f"{gw}/bench", "x-api-key", [key.full]),
            Target("jwt_rate_limited", f"{limited}/bench", "authorization", tokens),
            Target("litestar", f"http://127.0.0.1:{bare_port}/bench", "x-bench", ["1"]),
        ]
        series = measure(targets)
    figures = [repeated("gateway", metric, values, _unit(metric)) for metric, values in series.items()]
    chart.gateway_latency(figures)
    return figures
