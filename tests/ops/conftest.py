"""Debian tools the infra tests run (nginx, shellcheck, systemd-analyze, logrotate), installed once."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

PACKAGES = {
    "nginx": "nginx",
    "shellcheck": "shellcheck",
    "systemd-analyze": "systemd",
    "logrotate": "logrotate",
}


@pytest.fixture(scope="session")
def debian_tools() -> dict[str, str | None]:
    """Tool name -> path, or None when it is missing and apt-get could not install it."""
    missing = sorted({pkg for tool, pkg in PACKAGES.items() if shutil.which(tool) is None})
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
        print(f"\ninfra tests: installing {', '.join(missing)}: {' '.join(command)}")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        done = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env, check=False)
        if done.returncode != 0:
            output = done.stdout[-1500:] + done.stderr[-1500:]
            print(f"infra tests: apt-get failed ({done.returncode}):\n{output}")
    return {tool: shutil.which(tool) for tool in PACKAGES}


def need(tools: dict[str, str | None], tool: str) -> str:
    path = tools[tool]
    if path is None:
        reason = f"{tool} is not installed and apt-get could not install it"
        print(f"skipped: {reason}")
        pytest.skip(reason)
    return path
