"""Read an env file the way the deployment reads it (systemd EnvironmentFile / `set -a; . FILE`).

Lines are `KEY=VALUE`, optionally prefixed by `export `; blank lines and `#` comments are skipped;
values may be single- or double-quoted; an unquoted value ends at ` #`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "$": "$", "`": "`"}


@dataclass(frozen=True)
class EnvFileError(Exception):
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def _unquote(raw: str, path: str, number: int) -> str:
    if raw[:1] in ("'", '"'):
        quote = raw[0]
        end = raw.find(quote, 1)
        while quote == '"' and end > 0 and raw[end - 1] == "\\":
            end = raw.find(quote, end + 1)
        if end < 0:
            raise EnvFileError(path, number, f"unterminated {quote} quote")
        rest = raw[end + 1 :].strip()
        if rest and not rest.startswith("#"):
            raise EnvFileError(path, number, f"unexpected text after the closing quote: {rest!r}")
        body = raw[1:end]
        if quote == '"':
            body = re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), body)
        return body
    return re.split(r"\s+#", raw, maxsplit=1)[0].strip()


def parse(text: str, path: str = "<env>") -> dict[str, str]:
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.match(stripped)
        if not match:
            raise EnvFileError(path, number, "expected KEY=VALUE")
        found[match.group(1)] = _unquote(match.group(2).strip(), path, number)
    return found


def load(path: Path) -> dict[str, str]:
    return parse(path.read_text(), str(path))
