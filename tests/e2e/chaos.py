"""Helpers for the chaos tests: the load generator, the fault proxy and the loss check.

Binaries (all from crates/testkit, built by `cargo build -p otelspool-testkit`):
`$OTELSPOOL_LOADGEN_BIN`, `$OTELSPOOL_FAULTPROXY_BIN`, `$OTELSPOOL_CHECK_BIN`, defaulting to
target/debug/otelspool-{loadgen,faultproxy,check}. Everything talks to 127.0.0.1 only and
every wait has a deadline.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import requests

from conftest import START_TIMEOUT, Ports, Process, binary, wait_until


def tool(env: str, name: str) -> Path:
    """Path of a testkit binary; skips the test with a build hint if it is missing."""
    path = binary(env, name)
    if not path.exists():
        pytest.skip(f"{name} not found at {path}; build it with `cargo build -p otelspool-testkit`")
    return path


class Loadgen:
    """`otelspool-loadgen` in the background; `wait()` returns its JSON report."""

    def __init__(self, work: Path, endpoint: str, run_id: str, *, protocol: str = "grpc",
                 jobs: int = 20, rate: float = 50, batch: int = 10, duration: float = 30,
                 deadline: float = 90, timeout: float = 2.0, record_size: int = 300) -> None:
        self.ack_log = work / f"acks-{run_id}.txt"
        self.report_path = work / f"loadgen-{run_id}.json"
        self.deadline = deadline
        self.process = Process(f"loadgen-{run_id}", [
            str(tool("OTELSPOOL_LOADGEN_BIN", "otelspool-loadgen")),
            f"--endpoint={endpoint}", f"--protocol={protocol}", f"--jobs={jobs}",
            f"--rate={rate}", f"--batch={batch}", f"--duration={duration}s",
            f"--deadline={deadline}s", f"--timeout={timeout}s", f"--record-size={record_size}",
            f"--run-id={run_id}", f"--ack-log={self.ack_log}", f"--report={self.report_path}",
        ], work)

    def start(self) -> "Loadgen":
        self.process.spawn()
        return self

    def acked_so_far(self) -> int:
        try:
            with open(self.ack_log, "rb") as f:
                return sum(1 for _ in f)
        except FileNotFoundError:
            return 0

    def wait(self) -> dict:
        """Waits for the loadgen to finish (its own deadline plus a margin); returns the report."""
        assert self.process.proc is not None
        try:
            self.process.proc.wait(timeout=self.deadline + 15)
        except subprocess.TimeoutExpired:
            self.process.proc.kill()
            pytest.fail(f"loadgen ran past its deadline\n{self.process.diagnostics()}",
                        pytrace=False)
        assert self.process.proc.returncode == 0, \
            f"loadgen failed\n{self.process.diagnostics()}"
        report = json.loads(self.report_path.read_text())
        print(f"\n{self.process.stderr(tail=1)}")
        return report

    def kill(self) -> None:
        self.process.kill9()


class FaultProxy:
    """`otelspool-faultproxy` on fixed ports (so otelspool's config can point at it)."""

    def __init__(self, ports: Ports, work: Path, upstream_port: int) -> None:
        self.port, self.control_port = ports(), ports()
        self.ready_path = work / "faultproxy-ready.json"
        self.process = Process("faultproxy", [
            str(tool("OTELSPOOL_FAULTPROXY_BIN", "otelspool-faultproxy")),
            f"--listen=127.0.0.1:{self.port}", f"--upstream=127.0.0.1:{upstream_port}",
            f"--control=127.0.0.1:{self.control_port}", f"--ready-file={self.ready_path}",
        ], work)

    @property
    def control(self) -> str:
        return f"http://127.0.0.1:{self.control_port}"

    def start(self) -> "FaultProxy":
        self.ready_path.unlink(missing_ok=True)
        self.process.spawn()

        def ready():
            if not self.process.alive():
                pytest.fail(f"fault proxy exited during start\n{self.process.diagnostics()}",
                            pytrace=False)
            return self.ready_path.exists() and requests.get(f"{self.control}/stats",
                                                             timeout=1).ok

        wait_until("the fault proxy to listen", ready, START_TIMEOUT,
                   diagnostics=self.process.diagnostics)
        return self

    def set_mode(self, mode: str) -> None:
        requests.post(f"{self.control}/mode", data=mode, timeout=2).raise_for_status()

    def stats(self) -> dict:
        return requests.get(f"{self.control}/stats", timeout=2).json()

    def stop(self) -> None:
        self.process.terminate()


def check_delivery(work: Path, loadgen: Loadgen, record_path: Path) -> tuple[int, dict]:
    """Runs `otelspool-check`; returns its exit code and JSON verdict."""
    out = work / "check.json"
    done = subprocess.run([
        str(tool("OTELSPOOL_CHECK_BIN", "otelspool-check")),
        f"--ack-log={loadgen.ack_log}", f"--records={record_path}",
        f"--loadgen-report={loadgen.report_path}", f"--out={out}",
    ], capture_output=True, text=True, timeout=60)
    assert done.returncode in (0, 1), f"otelspool-check failed: {done.stderr}"
    return done.returncode, json.loads(done.stdout)


def wait_all_delivered(work: Path, loadgen: Loadgen, record_path: Path, timeout: float,
                       diagnostics) -> dict:
    """Polls the check until nothing acknowledged is missing (or the deadline); returns the
    last verdict either way so the caller's assertion shows the counts."""
    deadline = time.monotonic() + timeout
    while True:
        code, verdict = check_delivery(work, loadgen, record_path)
        if code == 0 or time.monotonic() >= deadline:
            break
        time.sleep(1.0)
    if verdict["lost"]:
        print(f"\nstill missing after {timeout:.0f}s: {verdict['lost']} "
              f"e.g. {verdict['lost_examples'][:5]}\n{diagnostics()}")
    return verdict


def print_counts(title: str, loadgen_report: dict, verdict: dict, **extra) -> None:
    """One line a human (and CI log) can read: the exact-loss counts."""
    counts = {
        "sent": loadgen_report["sent"], "acknowledged": verdict["acked"],
        "delivered": verdict["delivered"], "duplicates": verdict["duplicates"],
        "duplicate_copies": verdict["duplicate_copies"], "lost": verdict["lost"],
        "unexpected": verdict["unexpected"], "failed_requests": loadgen_report["failed_requests"],
        "retries": loadgen_report["retries"], "throughput": round(loadgen_report["throughput"]),
        "p99_ms": loadgen_report["request_latency"]["p99_ms"], **extra,
    }
    print(f"\n{title}: {json.dumps(counts)}")
