"""Overload: clients push far more than the backend takes. Memory stays under the limit,
the excess is refused with retryable errors, and nothing acknowledged is lost."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

from chaos import Loadgen, print_counts, wait_all_delivered
from conftest import wait_until

LIMIT_MIB = 64
SPIKE_MIB = 16
# Stated margin over limit_mib: the limiter samples RSS every check_interval (100 ms here)
# and refuses above the soft limit (limit - spike); allocations already under way finish.
MARGIN_MIB = 8


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_overload_keeps_rss_under_the_memory_limit(make_backend, make_otelspool, tmp_path):
    """Scenario: the backend answers slowly (300 ms a request) while 50 jobs send 1 KB
    records flat out for 15 s, far beyond what the backend takes.
    Guarantees: otelspool's RSS stays under limit_mib + the stated margin; the excess is
    refused with retryable errors (counted in otelspool_receiver_refused_requests); once the
    backend is fast again, every acknowledged record is delivered."""
    backend = make_backend("slow:300")
    backend.start()
    spool = make_otelspool(backend.grpc_port)
    text = spool.config_path.read_text()
    text = text.replace(
        "processors:\n  batch:",
        f"processors:\n  memory_limiter: {{ check_interval: 100ms, limit_mib: {LIMIT_MIB}, "
        f"spike_limit_mib: {SPIKE_MIB} }}\n  batch:")
    text = text.replace("processors: [batch]", "processors: [memory_limiter, batch]")
    text = text.replace("sending_queue: { storage: file_storage }",
                        "sending_queue: { storage: file_storage, max_size_mib: 32 }")
    spool.config_path.write_text(text)
    spool.start()
    assert spool.process.proc is not None
    pid = spool.process.proc.pid

    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], rss_kib(pid))
            except (FileNotFoundError, ProcessLookupError):
                return
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    load = Loadgen(tmp_path, spool.grpc_endpoint, f"ovl{uuid.uuid4().hex[:6]}", jobs=50, rate=0,
                   batch=100, duration=15, deadline=25, timeout=5.0, record_size=1000).start()
    report = load.wait()
    stop.set()
    sampler.join(timeout=5)
    spool.assert_alive("the overload")
    refused = spool.metric("otelspool_receiver_refused_requests") or 0
    peak_mib = peak[0] / 1024
    print(f"\npeak RSS {peak_mib:.1f} MiB (limit {LIMIT_MIB} + margin {MARGIN_MIB}); "
          f"refused requests {refused:.0f}; loadgen retries {report['retries']}")
    assert refused > 0, "the sidecar never pushed back: the test did not overload it"
    assert peak_mib <= LIMIT_MIB + MARGIN_MIB, f"RSS peaked at {peak_mib:.1f} MiB"

    backend.set_mode("ok")
    verdict = wait_all_delivered(tmp_path, load, backend.record_path, 90,
                                 diagnostics=spool.process.diagnostics)
    print_counts("overload", report, verdict, peak_rss_mib=round(peak_mib, 1),
                 refused_requests=int(refused))
    assert verdict["lost"] == 0
    wait_until("otelspool to stay healthy", spool.healthy, 10)
