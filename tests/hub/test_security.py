"""Cross-cutting security and bad-input checks of issue 3, against a real running hub.

Items that the hub-core tests cover exactly (wrong password, long user names, ``next=``
redirects, XSRF) are not repeated here.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

GILHUB = [sys.executable, "-c", "from gilhub.app import main; main()"]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_database_at_start_is_a_clear_error(tmp_path: Path) -> None:
    port = closed_port()
    url = f"postgresql://gilhub:not-a-secret@127.0.0.1:{port}/gilhub"
    done = subprocess.run(
        [*GILHUB, f"--db-url={url}", f"--data-dir={tmp_path}", "--port=0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "Traceback" not in output
    message = done.stderr.strip().splitlines()[-1]
    assert message.startswith("gilhub: cannot use the database")
    assert f"127.0.0.1:{port}" in message
    assert "not-a-secret" not in output  # the password is never echoed
