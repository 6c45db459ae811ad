"""A hub API latency probe in a process of its own, for ``load_bench.py``.

Run as ``python -m bench.api_probe``, with ``PROBE_URL`` and ``PROBE_TOKEN`` in the
environment (the token is a secret: never on a command line). It asks ``GET PROBE_URL`` every
``PROBE_INTERVAL`` seconds over one keep-alive connection until its standard input closes,
then prints the latencies it measured (seconds, one JSON list) on standard output.

Why a process of its own: a probe on the load generator's event loop also measures that loop,
which is busy with twenty simulated people (kernel WebSockets, event streams, JSON); its
lateness would be counted as the hub's.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import threading
import time
from urllib.parse import urlsplit

PROBE_INTERVAL = 0.05


def probe(url: str, token: str, stop: threading.Event) -> list[float]:
    parts = urlsplit(url)
    headers = {"Authorization": f"token {token}"}
    timings = []
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    while not stop.is_set():
        began = time.perf_counter()
        try:
            connection.request("GET", parts.path, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status == 200:
                timings.append(time.perf_counter() - began)
        except (OSError, http.client.HTTPException):
            connection.close()  # reconnects on the next request
        stop.wait(PROBE_INTERVAL)
    return timings


def main() -> None:
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    timings = probe(os.environ["PROBE_URL"], os.environ["PROBE_TOKEN"], stop)
    json.dump(timings, sys.stdout)


if __name__ == "__main__":
    main()
