"""When to ask "what are you trying to do?": the asking rules, with no database and no clock.

The server extension gathers what the rules need (each cell's runs, which versions were
asked about already, how many prompts the last hour saw, the notebooks the user silenced)
and the rules say which cell versions to ask about:

- ``continuous``: while the user works. A cell is asked about when it is run again after
  its source changed :attr:`Rules.changes_before_asking` times since it was last asked
  about (or since its first run), or when a run succeeds with a new source right after a
  failed run (an error and its fix). At most one prompt per version of a cell, at most
  :attr:`Rules.prompts_per_hour` an hour, never in a notebook the user silenced.
- ``end``: when the notebook is closed (or on demand, in either mode), the
  :attr:`Rules.cells_at_end` cells whose source changed most, about their latest version.
- ``off``: never.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

QUESTION = "What are you trying to do or find out in this cell?"
MODES = ("continuous", "end", "off")

#: Why a cell is asked about (stored with the prompt).
REASON_CHANGED = "changed"
REASON_FIXED = "fixed"
REASON_END = "changed most"


@dataclass(frozen=True)
class Rules:
    mode: str = "continuous"
    #: N: source changes since the last prompt after which a re-run is asked about.
    changes_before_asking: int = 3
    #: K: prompts in any hour, at most.
    prompts_per_hour: int = 4
    #: How many cells the end of a notebook asks about.
    cells_at_end: int = 3


@dataclass(frozen=True)
class Run:
    """One execution of a cell: which version of its source ran, and how it ended."""

    cell_version: str
    status: str  # "ok" or "error"


@dataclass(frozen=True)
class CellHistory:
    path: str
    cell_id: str
    #: every run of the cell, oldest first
    runs: tuple[Run, ...]
    #: the versions of the cell asked about already
    asked: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Ask:
    """Ask about ``cell_version`` of ``cell_id`` in ``path``, for ``reason``."""

    path: str
    cell_id: str
    cell_version: str
    reason: str


def source_changes(runs: tuple[Run, ...]) -> int:
    """How often the source differed from the run before."""
    pairs = zip(runs, runs[1:], strict=False)
    return sum(1 for before, after in pairs if before.cell_version != after.cell_version)


def errors(runs: tuple[Run, ...]) -> int:
    return sum(1 for run in runs if run.status == "error")


def _since_last_asked(cell: CellHistory) -> tuple[Run, ...]:
    """The runs from the last run of a version asked about (the whole history if none)."""
    for index in range(len(cell.runs) - 1, -1, -1):
        if cell.runs[index].cell_version in cell.asked:
            return cell.runs[index:]
    return cell.runs


def continuous_reason(cell: CellHistory, changes_before_asking: int) -> str | None:
    """Why the cell's latest run is worth a question in continuous mode, or ``None``."""
    if len(cell.runs) < 2:
        return None
    previous, latest = cell.runs[-2], cell.runs[-1]
    if latest.cell_version in cell.asked:
        return None
    if (
        previous.status == "error"
        and latest.status == "ok"
        and latest.cell_version != previous.cell_version
    ):
        return REASON_FIXED
    if source_changes(_since_last_asked(cell)) >= changes_before_asking:
        return REASON_CHANGED
    return None


def continuous_asks(
    cells: Iterable[CellHistory],
    rules: Rules,
    *,
    asked_last_hour: int,
    quiet_paths: frozenset[str] = frozenset(),
) -> list[Ask]:
    """The prompts for cells just run (``cells``: their histories, in the order they ran)."""
    if rules.mode != "continuous":
        return []
    budget = max(0, rules.prompts_per_hour - asked_last_hour)
    asks: list[Ask] = []
    for cell in cells:
        if len(asks) >= budget:
            break
        if cell.path in quiet_paths:
            continue
        reason = continuous_reason(cell, rules.changes_before_asking)
        if reason is not None:
            asks.append(Ask(cell.path, cell.cell_id, cell.runs[-1].cell_version, reason))
    return asks


def end_asks(
    cells: Iterable[CellHistory], rules: Rules, *, quiet_paths: frozenset[str] = frozenset()
) -> list[Ask]:
    """The prompts at the end of a notebook: the cells that changed most (then failed
    most), in notebook order among equals, about their latest version not yet asked about."""
    if rules.mode == "off":
        return []
    candidates = [
        cell
        for cell in cells
        if cell.path not in quiet_paths
        and source_changes(cell.runs) > 0
        and cell.runs[-1].cell_version not in cell.asked
    ]
    candidates.sort(key=lambda cell: (-source_changes(cell.runs), -errors(cell.runs)))
    return [
        Ask(cell.path, cell.cell_id, cell.runs[-1].cell_version, REASON_END)
        for cell in candidates[: rules.cells_at_end]
    ]
