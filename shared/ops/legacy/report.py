"""What an import read, imported and skipped (and why), per legacy table."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from shared.ops.legacy.source import TABLES


@dataclass
class TableReport:
    read: int = 0
    imported: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1


@dataclass
class Report:
    dry_run: bool
    tables: dict[str, TableReport] = field(default_factory=lambda: {t: TableReport() for t in TABLES})
    notes: list[str] = field(default_factory=list)

    def format(self) -> str:
        lines = ["dry run: nothing was written" if self.dry_run else "import committed"]
        lines.append(f"{'table':20} {'read':>7} {'imported':>9} {'skipped':>8}")
        for name, t in self.tables.items():
            lines.append(f"{name:20} {t.read:7} {t.imported:9} {sum(t.skipped.values()):8}")
            lines += [f"{'':20}   skipped {n}: {reason}" for reason, n in sorted(t.skipped.items())]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)
