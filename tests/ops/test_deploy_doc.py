"""Every `catalytic …` command in docs/deploy.md parses with the real CLI and is run by a test."""

from __future__ import annotations

import re
import shlex

import pytest

from shared.cli import build_parser
from tests.conftest import REPO

GUIDE = REPO / "docs" / "deploy.md"

# Subcommand -> the test file that runs it (with every flag the guide uses).
COVERED = {
    ("keys", "generate"): "tests/ops/test_commands.py",
    ("env", "check"): "tests/ops/test_env_file.py",
    ("migrate",): "tests/ops/test_commands.py",
    ("admin", "create"): "tests/ops/test_admin.py",
    ("backup",): "tests/ops/test_commands.py",
    ("restore",): "tests/ops/test_commands.py",
    ("preflight",): "tests/ops/test_preflight.py",
    ("email", "test"): "tests/notifier/test_cli.py",
    ("import-legacy",): "tests/ops/test_legacy_import.py",
}
SCRIPTS = {
    "infra/deploy/deploy.sh": "tests/ops/test_deploy.py",
    "infra/deploy/rollback.sh": "tests/ops/test_deploy.py",
}


def _code_lines() -> list[str]:
    blocks = re.findall(r"```[a-z]*\n(.*?)```", GUIDE.read_text(), flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def _commands() -> list[list[str]]:
    return [shlex.split(line)[1:] for line in _code_lines() if line.startswith("catalytic ")]


def _subcommand(argv: list[str]) -> tuple[str, ...]:
    two = tuple(argv[:2])
    return two if two in COVERED else (argv[0],)


def test_the_guide_has_the_commands_of_every_step() -> None:
    found = {_subcommand(argv) for argv in _commands()}
    assert found == set(COVERED), f"guide and coverage list differ: {found ^ set(COVERED)}"


@pytest.mark.parametrize("argv", _commands(), ids=" ".join)
def test_command_parses_and_is_exercised(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)  # unknown subcommands or flags exit here
    assert callable(args.fn)
    key = _subcommand(argv)
    test_file = REPO / COVERED[key]
    source = test_file.read_text()
    words = r",\s*".join(f'"{re.escape(w)}"' for w in key)
    assert re.search(words, source), f"{test_file} does not run `catalytic {' '.join(key)}`"
    for flag in (a.split("=", 1)[0] for a in argv if a.startswith("--")):
        assert f'"{flag}"' in source, f"{test_file} never passes {flag}"


def test_scripts_in_the_guide_are_tested() -> None:
    for script, test_file in SCRIPTS.items():
        assert any(line.startswith(script) for line in _code_lines()) or script.endswith("rollback.sh")
        assert (REPO / script).exists()
        assert (REPO / script).name in (REPO / test_file).read_text()
