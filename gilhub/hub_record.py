"""The running hub's record in its data directory (``gilhub.pid``).

The hub writes its pid and start time there while it runs, so that a command
(``gilhub user add …``) on the same data directory can say that it uses the
running hub's database, and a later process can tell a live hub from a pid
left behind by a crash (the start time must match too).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import psutil

from gilhub.spawner.process import find_process

RECORD_FILE = "gilhub.pid"


def record_running_hub(data_dir: Path) -> None:
    """Note this process as the hub of ``data_dir`` (replacing a stale record)."""
    pid = os.getpid()
    record = {"pid": pid, "create_time": psutil.Process(pid).create_time()}
    data_dir.mkdir(parents=True, exist_ok=True)  # with db_url nothing else may have made it
    (data_dir / RECORD_FILE).write_text(json.dumps(record), encoding="utf-8")


def forget_running_hub(data_dir: Path) -> None:
    """Remove the record, if it is this process's."""
    if running_hub_pid(data_dir) == os.getpid():
        (data_dir / RECORD_FILE).unlink(missing_ok=True)


def running_hub_pid(data_dir: Path) -> int | None:
    """The pid of the hub running on ``data_dir``, or ``None`` when none is."""
    try:
        record = json.loads((data_dir / RECORD_FILE).read_text(encoding="utf-8"))
        process = find_process(int(record["pid"]), float(record["create_time"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return process.pid if process is not None else None
