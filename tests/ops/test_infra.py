"""The nginx site and the systemd units, checked by nginx and systemd themselves."""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO
from tests.ops.certs import self_signed
from tests.ops.conftest import need
from tests.platform import Platform

SITE = REPO / "infra" / "nginx" / "catalytic.conf"
UNITS = REPO / "infra" / "systemd"
HARDENING = (
    "NoNewPrivileges=yes",
    "PrivateTmp=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "UMask=0077",
)
SERVICE_HARDENING = (
    "PrivateDevices=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectControlGroups=yes",
    "RestrictSUIDSGID=yes",
    "CapabilityBoundingSet=",
    "SystemCallFilter=@system-service",
)


def test_nginx_accepts_the_site(debian_tools: dict[str, str | None], tmp_path: Path) -> None:
    nginx = need(debian_tools, "nginx")
    cert, key = self_signed(tmp_path, "api.example.com")
    site = SITE.read_text()
    site = site.replace("/etc/letsencrypt/live/api.example.com/fullchain.pem", str(cert))
    site = site.replace("/etc/letsencrypt/live/api.example.com/privkey.pem", str(key))
    assert str(cert) in site and str(key) in site
    (tmp_path / "catalytic.conf").write_text(site)
    (tmp_path / "logs").mkdir()
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/logs/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  include {tmp_path}/catalytic.conf;\n}}\n"
    )
    done = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(main)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "syntax is ok" in done.stderr and "test is successful" in done.stderr


def _blocks(text: str, head: str) -> list[str]:
    """Bodies of every `head … { … }` block (nested braces included)."""
    found = []
    for match in re.finditer(head, text):
        start = text.index("{", match.end() - 1)
        depth, i = 0, start
        while True:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                break
            i += 1
        found.append(text[start + 1 : i])
    return found


def test_nginx_site_has_the_production_settings() -> None:
    text = re.sub(r"#.*", "", SITE.read_text())
    servers = _blocks(text, r"\bserver\s*\{")
    plain = [s for s in servers if re.search(r"listen\s+80\b", s)]
    tls = [s for s in servers if re.search(r"listen\s+443\s+ssl", s)]
    assert len(plain) == 1 and len(tls) == 1
    assert re.search(r"location\s+/\s*\{\s*return\s+301\s+https://\$host\$request_uri;", plain[0])
    assert re.search(r"ssl_protocols\s+TLSv1\.2\s+TLSv1\.3;", tls[0])
    for header in (
        "Strict-Transport-Security",
        "X-Content-Type-Options",
        "X-Frame-Options",
        "Referrer-Policy",
    ):
        assert re.search(rf"add_header\s+{header}\s+.+\balways;", tls[0]), header
    assert re.search(r'Strict-Transport-Security\s+"max-age=(\d+)', tls[0])
    zone = re.search(r"limit_req_zone\s+\$binary_remote_addr\s+zone=(\w+):", text)
    assert zone
    upstream = _blocks(text, r"upstream\s+catalytic_gateway\s*\{")
    assert len(upstream) == 1 and "server 127.0.0.1:8000;" in upstream[0]
    health = _blocks(tls[0], r"location\s*=\s*/health\s*\{")
    root = _blocks(tls[0], r"location\s+/\s*\{")
    assert len(health) == 1 and len(root) == 1
    assert "limit_req" not in health[0] and "proxy_pass http://catalytic_gateway;" in health[0]
    assert f"limit_req zone={zone.group(1)}" in root[0] and "proxy_pass http://catalytic_gateway;" in root[0]


@pytest.fixture
def unit_tree(tmp_path: Path) -> tuple[Path, Path]:
    """The units with /opt/catalytic moved to a temporary install that has the binary."""
    root, units = tmp_path / "opt", tmp_path / "units"
    (root / ".venv" / "bin").mkdir(parents=True)
    binary = root / ".venv" / "bin" / "catalytic"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    units.mkdir()
    for unit in UNITS.iterdir():
        (units / unit.name).write_text(unit.read_text().replace("/opt/catalytic", str(root)))
    return root, units


def test_systemd_verifies_every_unit(
    debian_tools: dict[str, str | None], unit_tree: tuple[Path, Path]
) -> None:
    analyze = need(debian_tools, "systemd-analyze")
    _, units = unit_tree
    names = [
        *(f"catalytic-api@{s}.service" for s in ("gateway", "identity", "billing", "notifier", "usage")),
        *(f"catalytic-worker@{s}.service" for s in ("identity", "billing", "notifier", "usage")),
        "catalytic-backup.service",
        "catalytic-backup.timer",
        "catalytic.target",
    ]
    done = subprocess.run(
        [analyze, "verify", "--man=no", *names],
        cwd=units,
        env={"SYSTEMD_UNIT_PATH": f"{units}:", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr  # warnings (unknown keys, bad values) count too


def test_systemd_verify_catches_a_broken_unit(
    debian_tools: dict[str, str | None], unit_tree: tuple[Path, Path]
) -> None:
    analyze = need(debian_tools, "systemd-analyze")
    root, units = unit_tree
    (root / ".venv" / "bin" / "catalytic").unlink()
    done = subprocess.run(
        [analyze, "verify", "--man=no", "catalytic-api@gateway.service"],
        cwd=units,
        env={"SYSTEMD_UNIT_PATH": f"{units}:", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0 and "is not executable" in done.stderr


@pytest.mark.parametrize(
    "unit", ["catalytic-api@.service", "catalytic-worker@.service", "catalytic-backup.service"]
)
def test_units_are_hardened(unit: str) -> None:
    lines = set((UNITS / unit).read_text().splitlines())
    wanted = HARDENING + (SERVICE_HARDENING if "@" in unit else ())
    assert [o for o in wanted if o not in lines] == []
    assert "User=catalytic" in lines and "EnvironmentFile=/etc/catalytic/catalytic.env" in lines


def test_deploy_scripts_pass_bash_and_shellcheck(debian_tools: dict[str, str | None]) -> None:
    scripts = sorted((REPO / "infra" / "deploy").glob("*.sh"))
    assert len(scripts) == 3
    for script in scripts:
        done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
    shellcheck = need(debian_tools, "shellcheck")
    done = subprocess.run([shellcheck, "-x", *map(str, scripts)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def running_nginx(
    debian_tools: dict[str, str | None], tmp_path: Path, platform: Platform
) -> Iterator[tuple[int, int]]:
    """The site served by a real nginx on free ports, in front of the test platform's gateway.

    Only addresses, ports, certificate paths and the rate (1 per minute, so the burst runs out
    within a test) differ from the shipped file."""
    nginx = need(debian_tools, "nginx")
    cert, key = self_signed(tmp_path, "api.example.com")
    plain, tls = _free_port(), _free_port()
    gateway = platform.url("gateway").removeprefix("http://")
    site = SITE.read_text()
    for old, new in (
        ("/etc/letsencrypt/live/api.example.com/fullchain.pem", str(cert)),
        ("/etc/letsencrypt/live/api.example.com/privkey.pem", str(key)),
        ("listen 80;", f"listen 127.0.0.1:{plain};"),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{tls} ssl http2;"),
        ("listen [::]:80;", ""),
        ("listen [::]:443 ssl http2;", ""),
        ("server 127.0.0.1:8000;", f"server {gateway};"),
        ("rate=50r/s", "rate=1r/m"),
    ):
        assert old in site, old
        site = site.replace(old, new)
    (tmp_path / "catalytic.conf").write_text(site)
    (tmp_path / "logs").mkdir()
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"daemon off;\nmaster_process off;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/logs/error.log;\n"
        f"events {{}}\nhttp {{\n  access_log off;\n  include {tmp_path}/catalytic.conf;\n}}\n"
    )
    proc = subprocess.Popen([nginx, "-p", str(tmp_path), "-c", str(main)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", tls), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else "nginx exited"
                assert time.monotonic() < deadline, "nginx did not start listening"
                time.sleep(0.05)
        yield plain, tls
    finally:
        proc.terminate()
        proc.wait(10)


def test_nginx_serves_the_site(running_nginx: tuple[int, int]) -> None:
    plain, tls = running_nginx
    redirect = httpx.get(f"http://127.0.0.1:{plain}/billing/plans?x=1", headers={"Host": "api.example.com"})
    assert redirect.status_code == 301
    assert redirect.headers["location"] == "https://api.example.com/billing/plans?x=1"
    with httpx.Client(base_url=f"https://127.0.0.1:{tls}", verify=False, timeout=10) as client:
        health = client.get("/health")
        assert health.status_code == 200, health.text
        assert health.headers["strict-transport-security"].startswith("max-age=")
        for header, value in (
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "no-referrer"),
        ):
            assert health.headers.get_list(header) == [value], header  # once, not from both
        assert len(health.headers.get_list("strict-transport-security")) == 1
        assert "server" not in health.headers or "nginx/" not in health.headers["server"]
        # /health is never limited; everything else is, per client address.
        assert {client.get("/health").status_code for _ in range(110)} == {200}
        limited = [client.get("/billing/plans").status_code for _ in range(110)]
        assert 429 in limited and limited[0] != 429


def _handshake(port: int, version: ssl.TLSVersion) -> str:
    """The protocol agreed when the client offers only `version` ('' if the server refuses)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer old versions at all
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = version
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="api.example.com") as tls:
                return tls.version() or ""
        except ssl.SSLError:
            return ""


def test_nginx_speaks_tls_12_and_13_only(running_nginx: tuple[int, int]) -> None:
    _, port = running_nginx
    assert _handshake(port, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    assert _handshake(port, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    assert _handshake(port, ssl.TLSVersion.TLSv1_1) == ""
    assert _handshake(port, ssl.TLSVersion.TLSv1) == ""


def test_logrotate_rotates_the_logs(debian_tools: dict[str, str | None], tmp_path: Path) -> None:
    logrotate = need(debian_tools, "logrotate")
    logs = tmp_path / "log"
    logs.mkdir()
    (logs / "backup.log").write_text("one line\n")
    # Paths and the owner moved to the temporary tree (there is no `catalytic` user here).
    config = (REPO / "infra" / "logrotate" / "catalytic").read_text()
    config = config.replace("/var/log/catalytic", str(logs)).replace("catalytic catalytic", "root root")
    (tmp_path / "catalytic").write_text(config)
    (tmp_path / "catalytic").chmod(0o644)
    done = subprocess.run(
        [logrotate, "--force", "--state", str(tmp_path / "state"), str(tmp_path / "catalytic")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (logs / "backup.log.1").read_text() == "one line\n"  # delaycompress: the newest stays plain
    assert (logs / "backup.log").read_text() == ""  # copytruncate: the writer keeps its file


def test_cron_line_runs_the_backup_as_the_service_user() -> None:
    lines = [
        line
        for line in (REPO / "infra" / "cron" / "catalytic-backup").read_text().splitlines()
        if line and not line.startswith("#") and "=" not in line.split()[0]
    ]
    assert len(lines) == 1
    minute, hour, day, month, weekday, user, *command = lines[0].split()
    assert all(re.fullmatch(r"[0-9*/,-]+", f) for f in (minute, hour, day, month, weekday))
    assert user == "catalytic"
    assert "catalytic backup --dir /var/backups/catalytic" in " ".join(command)
