"""The story of a notebook, from what was recorded: working sessions, each cell's versions
with the diff from the one before, its runs, its errors and the version that fixed them,
and the user's answers. As JSON (the API), Markdown and a notebook (exports).
"""

from __future__ import annotations

import difflib
from datetime import datetime, timedelta
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from gilhub.activity.query import NotebookRecord

#: Characters of a version shown where a short name is enough.
SHORT_VERSION = 8


def narrative(record: NotebookRecord, session_gap: timedelta) -> dict[str, Any]:
    """The narrative of ``record`` as the API's JSON (see ACTIVITY_API.md)."""
    return {
        "path": record.path,
        "sessions": _sessions(record, session_gap),
        "cells": [_cell(record, cell_id) for cell_id in _cell_order(record)],
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _sessions(record: NotebookRecord, gap: timedelta) -> list[dict[str, Any]]:
    """Spans of work: executions and notebook events closer in time than ``gap``."""
    moments = sorted(
        [(run.started, 1) for run in record.executions] + [(e.time, 0) for e in record.events]
    )
    sessions: list[dict[str, Any]] = []
    for moment, is_execution in moments:
        if sessions and moment - sessions[-1]["end"] <= gap:
            sessions[-1]["end"] = moment
            sessions[-1]["executions"] += is_execution
        else:
            sessions.append({"start": moment, "end": moment, "executions": is_execution})
    return [{**s, "start": _iso(s["start"]), "end": _iso(s["end"])} for s in sessions]


def _cell_order(record: NotebookRecord) -> list[str]:
    """Cells in the order they were first run (then first seen)."""
    ran = [run.cell_id for run in record.executions]
    seen = [version.cell_id for version in record.versions]
    return list(dict.fromkeys(ran + seen))


def _cell(record: NotebookRecord, cell_id: str) -> dict[str, Any]:
    runs = [run for run in record.executions if run.cell_id == cell_id]
    return {
        "cell_id": cell_id,
        "versions": _versions(record, cell_id, runs),
        "executions": [
            {
                "cell_version": run.cell_version,
                "execution_count": run.execution_count,
                "started": _iso(run.started),
                "ended": _iso(run.ended),
                "status": run.status,
                "ename": run.ename,
                "evalue": run.evalue,
            }
            for run in runs
        ],
        "fixes": _fixes(runs),
        "answers": [
            {"cell_version": a.cell_version, "answer": a.answer, "time": _iso(a.time)}
            for a in record.answers
            if a.cell_id == cell_id
        ],
    }


def _versions(record: NotebookRecord, cell_id: str, runs: list[Any]) -> list[dict[str, Any]]:
    """The cell's versions in the order they first ran, each with its diff from the one
    before (versions recorded but never run come last)."""
    first_run: dict[str, datetime] = {}
    for run in runs:
        first_run.setdefault(run.cell_version, run.started)
    stored = {v.cell_version: v for v in record.versions if v.cell_id == cell_id}
    ordered = sorted(
        stored.values(),
        key=lambda v: (
            v.cell_version not in first_run,
            first_run.get(v.cell_version, v.first_seen),
        ),
    )
    versions, previous = [], None
    for version in ordered:
        versions.append(
            {
                "cell_version": version.cell_version,
                "source": version.source,
                "truncated": version.source_truncated,
                "first_run": _iso(first_run.get(version.cell_version, version.first_seen)),
                "diff": "" if previous is None else unified_diff(previous.source, version.source),
            }
        )
        previous = version
    return versions


def unified_diff(before: str, after: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile="before",
        tofile="after",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _fixes(runs: list[Any]) -> list[dict[str, Any]]:
    """Each failed run and the first later successful run with another source."""
    fixes, failed = [], []
    for run in runs:
        if run.status == "error":
            failed.append(run)
            continue
        fixed = [f for f in failed if f.cell_version != run.cell_version]
        fixes += [
            {
                "error": {"ename": f.ename, "evalue": f.evalue, "cell_version": f.cell_version},
                "fixed_by": run.cell_version,
            }
            for f in fixed
        ]
        failed = []
    return fixes


# -- exports ----------------------------------------------------------------------------


def _short(version: str) -> str:
    return version[:SHORT_VERSION]


def _fenced(text: str, language: str = "") -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}{language}\n{text.rstrip()}\n{fence}"


def _sessions_markdown(story: dict[str, Any]) -> str:
    lines = [f"# How this analysis was done: {story['path']}", ""]
    sessions = story["sessions"]
    lines.append(f"{len(sessions)} working session{'s' if len(sessions) != 1 else ''}:")
    lines.append("")
    lines += [f"- {s['start']} to {s['end']}: {s['executions']} executions" for s in sessions]
    return "\n".join(lines)


def _cell_markdown(number: int, cell: dict[str, Any]) -> str:
    runs, versions = cell["executions"], cell["versions"]
    failed = sum(1 for run in runs if run.get("status") == "error")
    lines = [
        f"## Cell {number}",
        "",
        f"Run {len(runs)} times ({failed} failed), {len(versions)} versions of its source.",
    ]
    for answer in cell["answers"]:
        lines += [
            "",
            f"> {answer['answer']}",
            "",
            f"(about version {_short(answer['cell_version'])})",
        ]
    for index, version in enumerate(versions):
        name = _short(version["cell_version"])
        label = f"Version {index + 1} ({name}), first run {version['first_run']}"
        body = (
            _fenced(version["diff"], "diff")
            if version["diff"]
            else _fenced(version["source"], "python")
        )
        lines += ["", f"{label}{': changes' if version['diff'] else ''}", "", body]
    for fix in cell["fixes"]:
        error = fix["error"]
        lines += [
            "",
            f"- `{error['ename']}: {error['evalue']}` in version {_short(error['cell_version'])},"
            f" fixed by version {_short(fix['fixed_by'])}",
        ]
    return "\n".join(lines)


def markdown(story: dict[str, Any]) -> str:
    """The narrative as a Markdown document."""
    parts = [_sessions_markdown(story)]
    parts += [_cell_markdown(n, cell) for n, cell in enumerate(story["cells"], 1)]
    return "\n\n".join(parts) + "\n"


def notebook(story: dict[str, Any]) -> str:
    """The narrative as a notebook: each cell's story, then its latest source."""
    cells = [new_markdown_cell(_sessions_markdown(story))]
    for number, cell in enumerate(story["cells"], 1):
        cells.append(new_markdown_cell(_cell_markdown(number, cell)))
        if cell["versions"]:
            cells.append(new_code_cell(cell["versions"][-1]["source"]))
    return nbformat.writes(new_notebook(cells=cells))
