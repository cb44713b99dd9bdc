"""Tools of the chaos tests and of the long campaign (`scripts/chaos`): the load generator (one
run, or runs in waves), the fault proxy, a tmpfs that can be made full, and the loss check.

Binaries (all from crates/testkit, built by `cargo build -p otelspool-testkit`):
`$OTELSPOOL_LOADGEN_BIN`, `$OTELSPOOL_FAULTPROXY_BIN`, `$OTELSPOOL_CHECK_BIN`, defaulting to
target/debug/otelspool-{loadgen,faultproxy,check}. Everything talks to 127.0.0.1 only and
every wait has a deadline. The campaign itself (kills, outages, the disk-full episode) is in
`chaos_campaign.py`.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import threading
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


def chaos_seed() -> int:
    """`$CHAOS_SEED` to replay a run, else a fresh one; always printed."""
    value = os.environ.get("CHAOS_SEED")
    seed = int(value) if value else random.SystemRandom().randrange(1 << 32)
    print(f"\nchaos seed: {seed} (replay with CHAOS_SEED={seed})", flush=True)
    return seed


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

    @property
    def ack_logs(self) -> list[Path]:
        return [self.ack_log]

    @property
    def report_paths(self) -> list[Path]:
        return [self.report_path]

    def start(self) -> "Loadgen":
        self.process.spawn()
        return self

    def acked_so_far(self) -> int:
        return count_lines(self.ack_log)

    def wait(self, quiet: bool = False) -> dict:
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
        if not quiet:
            print(f"\n{self.process.stderr(tail=1)}")
        return report

    def kill(self) -> None:
        self.process.kill9()


def count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def merge_reports(reports: list[dict]) -> dict:
    """Sums the counters of several loadgen reports (the figures the chaos checks use)."""
    merged = {"runs": len(reports), "errors": {}}
    for key in ("sent", "acked", "requests", "acked_requests", "failed_requests",
                "failed_records", "abandoned_requests", "retries", "partial_rejected"):
        merged[key] = sum(r[key] for r in reports)
    for r in reports:
        for reason, n in r["errors"].items():
            merged["errors"][reason] = merged["errors"].get(reason, 0) + n
    merged["request_p99_ms"] = max((r["request_latency"]["p99_ms"] for r in reports), default=0)
    merged["request_max_ms"] = max((r["request_latency"]["max_ms"] for r in reports), default=0)
    return merged


class LoadWaves:
    """Keeps load on otelspool for as long as a campaign lasts: per protocol, a new loadgen run
    (its own run id and ack log) every `wave_seconds`, until `stop_and_wait()`. A loadgen cannot
    be stopped early without losing its report, so runs are short and chained instead."""

    def __init__(self, work: Path, tag: str, endpoints: dict[str, tuple[str, int]], *,
                 rate: float, wave_seconds: float, tail_seconds: float = 45,
                 timeout: float = 2.0) -> None:
        self.work, self.tag, self.endpoints = work, tag, endpoints
        self.rate, self.wave_seconds, self.tail = rate, wave_seconds, tail_seconds
        self.timeout = timeout
        self.runs: list[Loadgen] = []
        self.reports: list[dict] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="load-waves", daemon=True)

    def start(self) -> "LoadWaves":
        self._start_wave(0)
        self._thread.start()
        return self

    def _start_wave(self, n: int) -> None:
        for protocol, (endpoint, jobs) in self.endpoints.items():
            if jobs <= 0:
                continue
            run = Loadgen(self.work, endpoint, f"{self.tag}{protocol[0]}{n}", protocol=protocol,
                          jobs=jobs, rate=self.rate, duration=self.wave_seconds,
                          deadline=self.wave_seconds + self.tail, timeout=self.timeout)
            with self._lock:
                self.runs.append(run.start())

    def _run(self) -> None:
        n = 0
        next_at = time.monotonic() + self.wave_seconds
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            n += 1
            next_at += self.wave_seconds
            try:
                self._start_wave(n)
            except BaseException as e:  # noqa: BLE001 - recorded, reported by stop_and_wait
                self.failures.append(f"could not start load wave {n}: {e!r}")
                return

    @property
    def ack_logs(self) -> list[Path]:
        with self._lock:
            return [r.ack_log for r in self.runs]

    @property
    def report_paths(self) -> list[Path]:
        with self._lock:
            return [r.report_path for r in self.runs]

    def acked_so_far(self) -> int:
        return sum(count_lines(p) for p in self.ack_logs)

    def stop_and_wait(self) -> dict:
        """Starts no more waves, waits for the running ones (each within its own deadline) and
        returns their merged report; a failed run is listed in `failures`."""
        self._stop.set()
        self._thread.join(timeout=30)
        with self._lock:
            runs = list(self.runs)
        for run in runs:
            try:
                self.reports.append(run.wait(quiet=True))
            except BaseException as e:  # noqa: BLE001 - pytest.fail raises a BaseException
                self.failures.append(f"{run.process.name}: {e}")
        return merge_reports(self.reports)

    def kill(self) -> None:
        self._stop.set()
        with self._lock:
            for run in self.runs:
                run.kill()


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


class TmpfsDisk:
    """A tmpfs mounted at `path` (needs root), shrunk to just above its use to make it full
    (`fill`, ENOSPC soon after) and grown back (`grow`). `reason_unavailable()` says why it
    cannot be used here, or None."""

    def __init__(self, path: Path, size: int = 1 << 30) -> None:
        self.path, self.size, self.mounted = path, size, False

    @staticmethod
    def reason_unavailable() -> str | None:
        if os.geteuid() != 0:
            return "mounting a tmpfs needs root (run scripts/chaos as root for this episode)"
        return None

    def mount(self) -> "TmpfsDisk":
        self.path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size}", "tmpfs",
                        str(self.path)], check=True, timeout=30)
        self.mounted = True
        return self

    def used(self) -> int:
        st = os.statvfs(self.path)
        return (st.f_blocks - st.f_bfree) * st.f_frsize

    def free(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def fill(self, margin: int = 512 * 1024) -> int:
        """Shrinks the filesystem to its current use plus `margin`; returns the new size."""
        size = self.used() + margin
        self._remount(size)
        return size

    def grow(self) -> None:
        self._remount(self.size)

    def _remount(self, size: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.path)], check=True,
                       timeout=30)

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], check=False, timeout=30)
            self.mounted = False


def check_delivery(work: Path, load, record_path: Path) -> tuple[int, dict]:
    """Runs `otelspool-check` over every ack log and report of `load` (a Loadgen or LoadWaves);
    returns its exit code and JSON verdict."""
    out = work / "check.json"
    argv = [str(tool("OTELSPOOL_CHECK_BIN", "otelspool-check")), f"--records={record_path}",
            f"--out={out}"]
    argv += [f"--ack-log={p}" for p in load.ack_logs]
    argv += [f"--loadgen-report={p}" for p in load.report_paths if p.exists()]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1), f"otelspool-check failed: {done.stderr}"
    return done.returncode, json.loads(done.stdout)


def wait_all_delivered(work: Path, load, record_path: Path, timeout: float,
                       diagnostics) -> dict:
    """Polls the check until nothing acknowledged is missing (or the deadline); returns the
    last verdict either way so the caller's assertion shows the counts."""
    deadline = time.monotonic() + timeout
    while True:
        code, verdict = check_delivery(work, load, record_path)
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
        "retries": loadgen_report["retries"], **extra,
    }
    if "throughput" in loadgen_report:
        counts["throughput"] = round(loadgen_report["throughput"])
        counts["p99_ms"] = loadgen_report["request_latency"]["p99_ms"]
    print(f"\n{title}: {json.dumps(counts)}")
