"""Limits that protect the machine: a byte-bounded queue (block / drop_oldest), a full disk,
and slow clients. In each case nothing acknowledged is lost and the process keeps serving."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

from conftest import DELIVERY_TIMEOUT, delivery_report, wait_until

RECORD_PAD = "x" * 2000


def json_logs(body: str) -> str:
    return json.dumps({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "limits"}}]},
        "scopeLogs": [{"logRecords": [{
            "body": {"stringValue": body},
            "attributes": [{"key": "emerge.job_id", "value": {"stringValue": "j-limits"}},
                           {"key": "pad", "value": {"stringValue": RECORD_PAD}}],
        }]}],
    }]})


def post(spool, body: str) -> requests.Response:
    return requests.post(f"{spool.http_base}/v1/logs", data=json_logs(body),
                         headers={"Content-Type": "application/json"}, timeout=5)


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def configure(spool, queue: str, data_dir: Path | None = None) -> None:
    text = spool.config_path.read_text()
    text = text.replace("sending_queue: { storage: file_storage }", f"sending_queue: {queue}")
    if data_dir is not None:
        text = text.replace(f'directory: "{spool.data_dir}"', f'directory: "{data_dir}"')
        spool.data_dir = data_dir
    spool.config_path.write_text(text)


def delivered_bodies(backend, prefix: str) -> list[str]:
    return [r["body"] for r in backend.records("logs") if r["body"].startswith(prefix)]


def fill_until_refused(spool, prefix: str, logs_dir: Path, limit_bytes: int | None,
                       max_requests: int = 4000) -> tuple[set[str], list[requests.Response]]:
    """Sends one record per request until 20 refusals in a row; checks disk use as it goes."""
    acked: set[str] = set()
    refusals: list[requests.Response] = []
    streak = 0
    for n in range(max_requests):
        body = f"{prefix}{n}"
        resp = post(spool, body)
        if resp.status_code == 200:
            acked.add(body)
            streak = 0
        else:
            refusals.append(resp)
            streak += 1
            if streak >= 20:
                break
        if limit_bytes is not None and n % 25 == 0:
            used = folder_bytes(logs_dir)
            assert used <= limit_bytes + 4096, f"queue folder uses {used} bytes, limit {limit_bytes}"
    return acked, refusals


def test_full_queue_blocks_with_a_retryable_code_and_loses_nothing(make_backend, make_otelspool):
    """Scenario: backend down, a 1 MiB queue, a client sending 2 KB records until refused.
    Guarantees: disk use never exceeds the limit; refusals are 503 + Retry-After (retryable);
    once the backend is back, every acknowledged record is delivered and new data is accepted."""
    backend = make_backend()  # not started: the backend is down
    spool = make_otelspool(backend.grpc_port)
    configure(spool, "{ storage: file_storage, max_size_mib: 1, when_full: block }")
    spool.start()
    prefix = f"qfull-{uuid.uuid4().hex[:6]} "
    logs_dir = spool.data_dir / "otlp" / "logs"
    acked, refusals = fill_until_refused(spool, prefix, logs_dir, 1 << 20)
    assert len(acked) > 100, f"only {len(acked)} records fit in 1 MiB"
    assert refusals and all(r.status_code == 503 for r in refusals), [r.status_code for r in refusals]
    assert all(r.headers.get("Retry-After") for r in refusals)
    assert "queue is full" in refusals[-1].text
    assert folder_bytes(logs_dir) <= (1 << 20) + 4096
    assert (spool.metric("otelcol_exporter_enqueue_failed_log_records", exporter="otlp") or 0) > 0
    spool.assert_alive("the queue filled up")

    backend.start()
    wait_until("every acknowledged record at the backend",
               lambda: acked <= set(delivered_bodies(backend, prefix)), DELIVERY_TIMEOUT)
    wait_until("the queue to accept data again", lambda: post(spool, f"{prefix}after").ok, 30)
    report = delivery_report(acked, delivered_bodies(backend, prefix))
    assert report["lost"] == 0


def test_drop_oldest_drops_counts_and_the_counts_add_up(make_backend, make_otelspool):
    """Scenario: backend down, a 1 MiB queue with when_full: drop_oldest.
    Guarantees: every request is accepted; disk use stays under the limit; the oldest data is
    dropped, counted in otelspool_exporter_queue_dropped_log_records; after recovery,
    delivered + dropped == acknowledged exactly, and what was dropped is older than what was
    delivered."""
    backend = make_backend()
    spool = make_otelspool(backend.grpc_port)
    configure(spool, "{ storage: file_storage, max_size_mib: 1, when_full: drop_oldest }")
    spool.start()
    prefix = f"qdrop-{uuid.uuid4().hex[:6]} "
    logs_dir = spool.data_dir / "otlp" / "logs"
    acked: set[str] = set()
    for n in range(1500):
        resp = post(spool, f"{prefix}{n}")
        assert resp.status_code == 200, f"drop_oldest refused request {n}: {resp.status_code}"
        acked.add(f"{prefix}{n}")
        if n % 25 == 0:
            assert folder_bytes(logs_dir) <= (1 << 20) + 4096
    dropped = spool.metric("otelspool_exporter_queue_dropped_log_records", exporter="otlp")
    assert dropped and dropped > 0, "nothing was dropped: the test did not fill the queue"

    backend.start()

    def settled():
        queued = spool.metric("otelspool_exporter_queue_items", exporter="otlp", data_type="logs")
        return queued == 0 and len(set(delivered_bodies(backend, prefix))) > 0

    wait_until("the queue to drain", settled, DELIVERY_TIMEOUT)
    dropped = spool.metric("otelspool_exporter_queue_dropped_log_records", exporter="otlp")
    delivered = set(delivered_bodies(backend, prefix))
    print(f"\nacked={len(acked)} delivered={len(delivered)} dropped={dropped:.0f}")
    assert delivered <= acked
    assert len(delivered) + int(dropped) == len(acked), "delivered + dropped must equal acked"
    seq = lambda b: int(b.rsplit(" ", 1)[1])  # noqa: E731
    lost = sorted(seq(b) for b in acked - delivered)
    assert max(lost) < min(seq(b) for b in delivered), "drop_oldest dropped newer data"


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MiB tmpfs: a real filesystem that fills up (ENOSPC)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mount = tmp_path / "tiny-disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_refuses_reports_and_recovers_by_itself(make_backend, make_otelspool, tiny_disk):
    """Scenario: the queue lives on a 1 MiB filesystem, the backend is down, clients keep
    sending until the disk is full; then the backend comes back.
    Guarantees: writes that fail are refused with 503 (never acknowledged); health and
    otelspool_exporter_queue_write_failing say so; after the backend drains the queue, space
    comes back and otelspool accepts data and reports healthy again by itself; every
    acknowledged record is delivered."""
    backend = make_backend()
    spool = make_otelspool(backend.grpc_port)
    configure(spool, "{ storage: file_storage }", data_dir=tiny_disk / "queue")
    spool.start()
    prefix = f"dfull-{uuid.uuid4().hex[:6]} "
    acked, refusals = fill_until_refused(spool, prefix, tiny_disk, None)
    assert acked and refusals
    assert all(r.status_code == 503 for r in refusals)
    assert "could not store the data durably" in refusals[-1].text, refusals[-1].text
    health = requests.get(f"http://127.0.0.1:{spool.health_port}/", timeout=2)
    assert health.status_code == 503 and "queue writes failing" in health.text, health.text
    assert spool.metric("otelspool_exporter_queue_write_failing", exporter="otlp",
                        data_type="logs") == 1
    spool.assert_alive("the disk filled up")

    backend.start()
    wait_until("every acknowledged record at the backend",
               lambda: acked <= set(delivered_bodies(backend, prefix)), DELIVERY_TIMEOUT)
    wait_until("otelspool to accept data again", lambda: post(spool, f"{prefix}after").ok, 30)
    wait_until("health to turn 200 again", spool.healthy, 10)
    assert spool.metric("otelspool_exporter_queue_write_failing", exporter="otlp",
                        data_type="logs") == 0
    report = delivery_report(acked, delivered_bodies(backend, prefix))
    assert report["lost"] == 0


def test_slow_clients_are_cut_off_and_others_are_served(otelspool):
    """Scenario: 50 clients open connections and send half a request header, then stall
    (slow-loris), while a normal client sends.
    Guarantees: the normal client is served at once; the stalled connections are closed by
    the server after the header timeout (10 s); the process stays up."""
    stalled = []
    for _ in range(50):
        s = socket.create_connection(("127.0.0.1", otelspool.http_port), timeout=30)
        s.sendall(b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: applic")
        stalled.append(s)
    started = time.monotonic()
    assert post(otelspool, "slowloris-normal-client").status_code == 200
    assert time.monotonic() - started < 2, "a normal client waited behind stalled ones"
    closed = 0
    deadline = time.monotonic() + 20
    for s in stalled:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            data = s.recv(1024)
            closed += 1  # b"" (closed) or an error response: either way the server gave up
            assert data == b"" or data.startswith(b"HTTP/1.1 4"), data[:80]
        except (ConnectionResetError, BrokenPipeError):
            closed += 1
        except socket.timeout:
            pass
        finally:
            s.close()
    waited = time.monotonic() - started
    print(f"\nstalled connections closed by the server: {closed}/50 after {waited:.1f}s")
    assert closed == 50
    otelspool.assert_alive("slow clients")


def test_stalled_request_bodies_do_not_refuse_other_clients(otelspool):
    """Scenario: 10 clients send POST /v1/logs headers declaring a 20 MiB body (half of them
    gzip), 10 bytes of it, then stall, while a normal client sends.
    Guarantees: the normal client is served (200) although the stalled requests are open
    (before, their declared size was reserved and everyone got 503 for 30 s); each stalled
    request is answered 408 and its connection closed once it falls under the minimum rate
    (16 KiB/s over 5 s), before the 30 s body deadline; the process stays up."""
    stalled = []
    for i in range(10):
        s = socket.create_connection(("127.0.0.1", otelspool.http_port), timeout=30)
        encoding = b"Content-Encoding: gzip\r\n" if i % 2 else b""
        s.sendall(b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                  b"Content-Length: 20971520\r\n" + encoding + b"\r\n" + b"\0" * 10)
        stalled.append(s)
    started = time.monotonic()
    for n in range(3):
        response = post(otelspool, f"stalled-bodies-normal-client-{n}")
        assert response.status_code == 200, (response.status_code, response.text)
    answers = []
    for s in stalled:
        s.settimeout(max(0.1, started + 25 - time.monotonic()))
        data = b""
        try:
            while chunk := s.recv(4096):
                data += chunk
        except socket.timeout:
            pytest.fail(f"a stalled body was not cut: {data[:80]!r}")
        finally:
            s.close()
        answers.append(data)
    waited = time.monotonic() - started
    print(f"\nstalled bodies cut after {waited:.1f}s: {[a[:12] for a in answers]}")
    assert all(a.startswith(b"HTTP/1.1 408") for a in answers), [a[:80] for a in answers]
    otelspool.assert_alive("stalled bodies")
