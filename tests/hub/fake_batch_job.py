"""A stand-in for a user server run as a batch job: ``python fake_batch_job.py JOBS JOB BASE``.

It is not a jupyter_server. It answers what the hub asks of any server (``GET
{BASE}api`` and ``api/status`` with the token from ``JUPYTER_TOKEN``, ``POST
{BASE}api/shutdown``), echoes any other path, and behaves like a job under a
scheduler whose records live in the directory JOBS: it picks its own port and
reports its address in ``JOBS/JOB.json`` (as a job on a cluster node reports
where it listens), and when it ends it records its exit status in
``JOBS/JOB.exit``. ``FAKE_JOB_EXIT=N`` in the environment makes it fail at once
with status N.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

jobs, job, base_url = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
token = os.environ["JUPYTER_TOKEN"]


def finish(status: int) -> None:
    # written whole or not at all: the spawner may read it at any moment
    (jobs / f"{job}.exit.tmp").write_text(str(status))
    (jobs / f"{job}.exit.tmp").replace(jobs / f"{job}.exit")
    print(f"fake job {job} ended with status {status}", flush=True)
    os._exit(status)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if not self.authorized():
            return
        path = self.path[len(base_url) :]
        if path in ("api", "api/status"):
            self.answer(200, {"version": "fake-batch-job"})
        else:
            self.answer(200, {"echo": self.path})

    def do_POST(self) -> None:  # noqa: N802
        if not self.authorized():
            return
        if self.path == base_url + "api/shutdown":
            self.answer(200, {})
            threading.Timer(0.1, finish, (0,)).start()
        else:
            self.answer(404, {})

    def authorized(self) -> bool:
        if self.headers.get("Authorization") != f"token {token}":
            self.answer(403, {"message": "token required"})
            return False
        return True

    def answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        print(format % args, flush=True)


def main() -> None:
    print(f"fake job {job} starting for {base_url}", flush=True)
    failure = os.environ.get("FAKE_JOB_EXIT")
    if failure:
        finish(int(failure))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    signal.signal(signal.SIGTERM, lambda *_: finish(143))
    host, port = server.server_address[:2]
    record = {"host": host, "port": port, "pid": os.getpid()}
    (jobs / f"{job}.json.tmp").write_text(json.dumps(record))
    (jobs / f"{job}.json.tmp").replace(jobs / f"{job}.json")
    server.serve_forever()


if __name__ == "__main__":
    main()
