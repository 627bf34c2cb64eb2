"""Bounded load from the host through a Service: a fixed request rate, a time limit and a
request cap, and every failure counted (status != 200, a connection error or a timeout)."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import httpx


@dataclass
class LoadResult:
    sent: int = 0
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # True when a limit (time or count) ended the load before the block did: then the end of
    # the block was not under load, and a test must not claim it was.
    ran_out: bool = False

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


class Load:
    """`with Load(url, trips, rate=120, max_seconds=60):` sends until the block ends (or the
    limits are reached); `.result` holds the counts. Each worker paces itself to rate/workers.

    With `truth` (one (duration s, fare $) per trip), every prediction gets a unique request
    id, and once answered its ground truth goes back through POST /feedback `feedback_delay`
    seconds later, as the ride app sends it when the trip ends (the prediction log is written
    after the answer: an immediate feedback could arrive before it). A failed feedback counts
    as a failure too; `feedback` counts the statuses the service answered."""

    def __init__(self, url: str, trips: list[dict], rate: float = 120, workers: int = 8,
                 max_seconds: float = 120, max_requests: int | None = None,
                 truth: list[tuple[float, float]] | None = None, feedback_delay: float = 2.0,
                 keepalive: bool = True):
        self.url, self.trips, self.rate, self.workers = url, trips, rate, workers
        self.truth, self.feedback_delay = truth, feedback_delay
        self.feedback: dict[str, int] = {}
        # kube-proxy picks a pod per connection: kept-alive connections stay on the pods they
        # first reached, so a split by pod count (a canary without ingress) needs clients that
        # reconnect, as many ride-app clients do. keepalive=False opens one per request.
        self.limits = httpx.Limits(max_keepalive_connections=None if keepalive else 0)
        # By default the time limit binds: the count cap is what that time at `rate` sends.
        self.max_requests = max_requests or int(rate * max_seconds) + workers
        self.max_seconds = max_seconds
        self.result = LoadResult()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def _worker(self, index: int) -> None:
        period = self.workers / self.rate
        deadline = self._start + self.max_seconds
        next_at = self._start + index * period / self.workers
        due: deque = deque()  # (when, request id, truth) of answered predictions
        with httpx.Client(base_url=self.url, timeout=10, limits=self.limits) as client:
            i = index
            while not self._stop.is_set() and time.monotonic() < deadline:
                while due and due[0][0] <= time.monotonic():
                    self._send_feedback(client, *due.popleft()[1:])
                with self._lock:
                    if self.result.sent >= self.max_requests:
                        return
                    self.result.sent += 1
                k = i % len(self.trips)
                trip = self.trips[k]
                if self.truth:
                    trip = {**trip, "request_id": f"load-{i}"}
                i += self.workers
                try:
                    reply = client.post("/predict", json=trip)
                    error = None if reply.status_code == 200 else f"HTTP {reply.status_code}"
                    if error is None and self.truth:
                        due.append((time.monotonic() + self.feedback_delay,
                                    trip["request_id"], self.truth[k]))
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                with self._lock:
                    if error:
                        self.result.failures.append(error)
                    else:
                        self.result.ok += 1
                next_at += period
                pause = next_at - time.monotonic()
                if pause > 0:
                    self._stop.wait(pause)

    def _send_feedback(self, client: httpx.Client, request_id: str, truth) -> None:
        try:
            reply = client.post("/feedback", json={
                "request_id": request_id, "actual_duration_seconds": float(truth[0]),
                "actual_fare_usd": float(truth[1])})
            error = None if reply.is_success else \
                f"feedback HTTP {reply.status_code}: {reply.text[:120]}"
            status = reply.json().get("status", "?") if reply.is_success else "error"
        except httpx.HTTPError as exc:
            error, status = f"feedback {type(exc).__name__}: {exc}", "error"
        with self._lock:
            self.feedback[status] = self.feedback.get(status, 0) + 1
            if error:
                self.result.failures.append(error)

    def __enter__(self) -> Load:
        self._start = time.monotonic()
        self._threads = [threading.Thread(target=self._worker, args=(i,), daemon=True)
                         for i in range(self.workers)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.result.ran_out = not any(t.is_alive() for t in self._threads)
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self.result.seconds = time.monotonic() - self._start


def check_load(kube, label: str, load: Load) -> None:
    """Record a scenario's request counts in the suite's timings and assert the load held
    (no time or count limit hit first, at least 100 req/s) with zero failed requests."""
    result = load.result
    kube.timings[f"{label}: requests sent"] = result.sent
    kube.timings[f"{label}: failed requests"] = len(result.failures)
    assert not result.ran_out, f"{label}: the load stopped before the scenario ended"
    assert result.rate >= 100, f"{label}: load reached only {result.rate:.0f} req/s"
    assert result.failures == [], (f"{label}: {len(result.failures)} of {result.sent} failed: "
                                   f"{sorted(set(result.failures))[:5]}")
