"""What the chaos campaign observes of otelspool (its metrics, health and queue folder), and its
disk-full episode. Every wait has a deadline; a missed one is a violation, never a hang."""

from __future__ import annotations

import json
import socket
import time

import pytest
import requests

QUEUE_LABELS = {"exporter": "otlp", "data_type": "logs"}


def wait_for(check, timeout: float, interval: float = 0.2) -> float | None:
    """Seconds until `check()` was true, or None if `timeout` passed first."""
    began = time.monotonic()
    while True:
        if check():
            return round(time.monotonic() - began, 2)
        if time.monotonic() - began >= timeout:
            return None
        time.sleep(interval)


class Observer:
    """Reads otelspool's state; every read answers None when otelspool does not."""

    def __init__(self, campaign) -> None:
        self.c = campaign

    def _metric(self, name: str, **labels) -> float | None:
        try:
            return self.c.otelspool.metric(name, **labels)
        except requests.RequestException:
            return None

    def queue_items(self) -> int | None:
        value = self._metric("otelspool_exporter_queue_items", **QUEUE_LABELS)
        return None if value is None else int(value)

    def write_failing(self) -> bool | None:
        value = self._metric("otelspool_exporter_queue_write_failing", **QUEUE_LABELS)
        return None if value is None else value == 1

    def storage_refusals(self) -> int:
        value = self._metric("otelspool_receiver_refused_requests", reason="storage_error")
        return int(value or 0)

    def health(self) -> tuple[int | None, str]:
        """Status and `reason` of the health check (None when it does not answer)."""
        try:
            resp = requests.get(f"http://127.0.0.1:{self.c.otelspool.health_port}/", timeout=1)
        except requests.RequestException:
            return None, ""
        try:
            reason = resp.json().get("reason", "")
        except ValueError:
            reason = resp.text[:200]
        return resp.status_code, reason

    def health_listening(self) -> bool:
        """Whether the health check accepts connections: the last step of otelspool's start-up
        (after the queues are recovered and the receivers listen)."""
        try:
            socket.create_connection(("127.0.0.1", self.c.otelspool.health_port), 0.05).close()
            return True
        except OSError:
            return False

    def queue_bytes(self) -> int:
        """Bytes of the logs queue's segment files on disk (its ledger and lock excluded)."""
        folder = self.c.otelspool.data_dir / "otlp" / "logs"
        try:
            return sum(f.stat().st_size for f in folder.iterdir()
                       if f.is_file() and f.name not in ("ledger", "lock"))
        except FileNotFoundError:
            return 0

    def probe(self, n: int) -> requests.Response | None:
        """One OTLP/JSON log record over HTTP (no loadgen id: the check counts it as other)."""
        body = {"resourceLogs": [{"scopeLogs": [{"logRecords": [
            {"body": {"stringValue": f"disk-full probe {n}"}}]}]}]}
        try:
            return requests.post(f"{self.c.otelspool.http_base}/v1/logs", data=json.dumps(body),
                                 headers={"Content-Type": "application/json"}, timeout=5)
        except requests.RequestException:
            return None


class DiskFullEpisode:
    """The queue's tmpfs fills up during a backend outage, otelspool is killed and restarted on
    the full disk, then the space comes back.

    Expected: writes that fail are refused with a retryable answer (503 + Retry-After over
    HTTP; the loadgen's permanent failures stay 0), the refusal is reported (health 503,
    `otelspool_exporter_queue_write_failing` 1, `otelspool_receiver_refused_requests
    {reason="storage_error"}`), otelspool starts on a full disk (its health check answers,
    200 or already 503), and once space returns it accepts again by itself. Loss is judged
    with the whole campaign."""

    FULL_TIMEOUT = 60.0
    RESUME_TIMEOUT = 60.0

    def __init__(self, campaign) -> None:
        self.c = campaign
        self.obs: Observer = campaign.observer
        self.out: dict = {"episode": "done", "refusals": 0}

    def run(self) -> dict:
        c, rng, disk = self.c, self.c.rng, self.c.disk
        c.ensure_running()
        outage = "blackhole" if c.proxy is not None else "backend-kill"
        self.outage(outage, begin=True)
        time.sleep(rng.uniform(0.5, 1.5))
        self.out["shrunk_to_bytes"] = disk.fill()
        c.event("queue disk shrunk to its use", size=self.out["shrunk_to_bytes"])
        if self.await_refusals("refusing_after_s"):
            status, reason = self.obs.health()
            self.out["health"] = {"status": status, "reason": reason}
            if status != 503:
                c.violation(f"health answered {status} while queue writes fail")
            self.probe()
        self.out["refusals"] += self.obs.storage_refusals()
        c.kill("disk-full")
        try:
            c.start_otelspool(healthy=False)
            self.out["restarted_on_full_disk"] = True
        except pytest.fail.Exception as e:
            self.out["restarted_on_full_disk"] = False
            c.violation(f"otelspool did not start on a full disk: {e}")
        if self.out["restarted_on_full_disk"]:
            self.await_refusals("refusing_again_after_s")
            time.sleep(rng.uniform(2.0, 4.0))
        disk.grow()
        acked = c.loads.acked_so_far()
        c.event("queue disk grown back", free=disk.free())
        c.ensure_running()
        resumed = wait_for(lambda: self.obs.write_failing() is False
                           and self.obs.health()[0] == 200
                           and c.loads.acked_so_far() > acked, self.RESUME_TIMEOUT)
        self.out["resumed_after_s"] = resumed
        if resumed is None:
            status, reason = self.obs.health()
            c.violation(f"otelspool did not accept again within {self.RESUME_TIMEOUT:.0f}s of "
                        f"space coming back (health {status} {reason!r}, write_failing "
                        f"{self.obs.write_failing()})")
        self.out["refusals"] += self.obs.storage_refusals()
        self.outage(outage, begin=False)
        c.event("disk-full episode ends", refusals=self.out["refusals"],
                resumed_after_s=resumed)
        return self.out

    def outage(self, kind: str, begin: bool) -> None:
        c = self.c
        if kind == "backend-kill":
            c.backend.kill9() if begin else c.backend.start()
        else:
            c.proxy.set_mode(kind if begin else "pass")
        self.out["outage"] = kind
        c.event(f"disk-full outage {'begins' if begin else 'ends'}", kind=kind)

    def await_refusals(self, key: str) -> bool:
        """Waits for the queue to report failing writes; records how long it took."""
        took = wait_for(lambda: self.obs.write_failing() is True, self.FULL_TIMEOUT)
        self.out[key] = took
        if took is None:
            self.c.violation(f"{key}: the queue did not report failing writes within "
                             f"{self.FULL_TIMEOUT:.0f}s of its disk filling up")
            return False
        self.c.event("queue writes failing", after_s=took, free=self.c.disk.free())
        return True

    def probe(self, count: int = 5) -> None:
        """Direct HTTP requests: each must be accepted (200) or refused retryably (503 with
        Retry-After); anything else, or no answer, is a violation."""
        statuses: dict[str, int] = {}
        for n in range(count):
            resp = self.obs.probe(n)
            key = "no answer" if resp is None else str(resp.status_code)
            statuses[key] = statuses.get(key, 0) + 1
            if resp is None:
                self.c.violation("disk-full probe got no answer from a running otelspool")
            elif not (resp.status_code == 200 or (
                    resp.status_code == 503 and resp.headers.get("Retry-After"))):
                self.c.violation(f"disk-full probe answered {resp.status_code} "
                                 f"(Retry-After {resp.headers.get('Retry-After')!r})")
        self.out["probe_statuses"] = statuses
