"""A Finkok the suite controls: the fake of invoicing/pac/fakes.py (real SOAP wire format, 307 "timbre previo"
with the same UUID for a document it already stamped) in its own process, switched at run time through
``POST /__faults__`` to

- ``timeout``: every call hangs past the client's timeout. Every other stamp call is stamped *before* hanging,
  so the PAC holds a stamp the product never heard of: the resend of the same sealed XML must come back as
  307 with that UUID, never as a second UUID;
- ``5xx``: every call answers HTTP 500 (a SOAP fault) or 503 (the balancer's HTML page), alternately;
- ``none``: normal service.

``GET /__faults__`` returns what it did (stamps, 307s, hangs, 5xx). Run as
``python bench/faultkit/pac.py --port N --hang-seconds S``.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from invoicing.pac.fakes import FINKOK_PASSWORD, FINKOK_USER, FinkokFake, finkok_fault  # noqa: E402

CONTROL_PATH = "/__faults__"
USERNAME, PASSWORD = FINKOK_USER, FINKOK_PASSWORD


class ControlledFinkok(FinkokFake):
    def __init__(self, port: int, hang_seconds: float):
        super().__init__()
        # Bind the port the suite chose (the base class took an ephemeral one).
        self.httpd.server_close()
        from http.server import ThreadingHTTPServer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.requests = collections.deque(maxlen=50)  # the tests' request log, bounded for a long run
        self.sleep_seconds = hang_seconds
        self.fault = "none"
        self.counts: collections.Counter = collections.Counter()
        self._turn = itertools.count()
        self._lock = threading.Lock()

    def count(self, what: str) -> None:
        with self._lock:
            self.counts[what] += 1

    def handle(self, method, path, headers, body):
        if path.startswith(CONTROL_PATH):
            if method == "POST":
                self.fault = json.loads(body or b"{}").get("fault", "none")
                self.count(f"switched_to_{self.fault}")
            state = {"fault": self.fault, "counts": dict(self.counts), "documents": len(self.stamps)}
            if "uuids" in path:
                state["uuids"] = [uuid for uuid, _ in self.stamps.values()]
            payload = json.dumps(state).encode()
            return 200, {"Content-Type": "application/json"}, payload
        fault = self.fault
        if fault == "5xx":
            self.count("answered_5xx")
            if next(self._turn) % 2:
                return 503, {"Content-Type": "text/html"}, b"<html><body><h1>503 Service Temporarily Unavailable</h1>"
            return finkok_fault("Internal Server Error")
        if fault == "timeout":
            if b"stamp>" in body and next(self._turn) % 2:
                super().handle(method, path, headers, body)  # stamped here; the answer never arrives
                self.count("stamped_then_hung")
            else:
                self.count("hung")
            return "timeout", {}, b""
        return super().handle(method, path, headers, body)

    def _stamp_once(self, key, sealed, fecha, mode):
        # Runs under the fake's stamp lock: whether this document is new is decided exactly once.
        self.count("answered_307" if key in self.stamps else "stamped")
        return super()._stamp_once(key, sealed, fecha, mode)


def control(url: str, fault: str | None = None, timeout: float = 5, uuids: bool = False) -> dict:
    """Switch the fake's fault (``fault``), or read what it did (with every UUID it gave when ``uuids``)."""
    import requests

    if fault is None:
        return requests.get(url + CONTROL_PATH + ("?uuids=1" if uuids else ""), timeout=timeout).json()
    return requests.post(url + CONTROL_PATH, data=json.dumps({"fault": fault}), timeout=timeout).json()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--hang-seconds", type=float, default=8.0)
    args = parser.parse_args()
    server = ControlledFinkok(args.port, args.hang_seconds)
    server.httpd.serve_forever()


if __name__ == "__main__":
    main()
