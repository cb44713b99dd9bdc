"""Fixtures for otelspool end-to-end tests.

Processes under test:
- the test backend (`otelspool-testbackend`, crates/testkit), found at
  `$OTELSPOOL_TESTBACKEND_BIN` or `target/debug/otelspool-testbackend`;
- otelspool itself, found at `$OTELSPOOL_BIN` or `target/debug/otelspool`.

Every wait is bounded by a deadline; on timeout the test fails with the state it waited for
and the tail of the process's stderr. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
CONFIGS = Path(__file__).resolve().parent / "configs"

# Deadlines, in seconds.
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
DELIVERY_TIMEOUT = 60.0


def binary(env: str, name: str) -> Path:
    """Path of a binary: from `env` if set, else target/debug/NAME in the repository."""
    value = os.environ.get(env)
    return Path(value) if value else REPO / "target" / "debug" / name


def wait_until(what: str, check: Callable[[], object], timeout: float, interval: float = 0.1,
               diagnostics: Callable[[], str] | None = None):
    """Polls `check` until it returns a truthy value; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = check()
            if result:
                return result
        except Exception as e:  # noqa: BLE001 - any failure just means "not yet"
            last_error = e
        if time.monotonic() >= deadline:
            extra = diagnostics() if diagnostics else ""
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}"
                        f"{f' (last error: {last_error!r})' if last_error else ''}\n{extra}",
                        pytrace=False)
        time.sleep(interval)


class Ports:
    """Hands out distinct free TCP ports on 127.0.0.1."""

    def __init__(self) -> None:
        self._given: set[int] = set()

    def __call__(self) -> int:
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in self._given:
                self._given.add(port)
                return port
        raise RuntimeError("could not find a free port on 127.0.0.1")


class Process:
    """A child process with its stderr captured to a file."""

    def __init__(self, name: str, argv: list[str], log_dir: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_dir = log_dir
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.stderr_path = log_dir / f"{name}.stderr"

    def spawn(self, env: dict[str, str] | None = None) -> None:
        self.starts += 1
        with open(self.stderr_path, "ab") as err:
            err.write(f"--- start #{self.starts}: {' '.join(self.argv)}\n".encode())
            err.flush()
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err,
                                         env={**os.environ, **(env or {})})

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stderr(self, tail: int = 60) -> str:
        try:
            lines = self.stderr_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join(lines[-tail:])

    def diagnostics(self) -> str:
        if self.proc is None:
            state = "never started"
        else:
            state = "running" if self.alive() else f"exited with {self.proc.returncode}"
        return f"--- {self.name} ({state}), stderr tail:\n{self.stderr()}"

    def kill9(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT)

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, then wait; SIGKILL and fail if it does not stop in time."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)
                pytest.fail(f"{self.name} did not stop within {timeout}s of SIGTERM\n"
                            f"{self.diagnostics()}", pytrace=False)
        return self.proc.returncode


class TestBackend:
    """The recording OTLP backend, on fixed ports so that a restart reuses them."""

    __test__ = False  # not a pytest test class

    def __init__(self, bin_path: Path, ports: Ports, work: Path, mode: str = "ok") -> None:
        self.grpc_port, self.http_port, self.control_port = ports(), ports(), ports()
        self.record_path = work / "backend-records.jsonl"
        self.ready_path = work / "backend-ready.json"
        self.mode = mode
        self.process = Process("testbackend", [
            str(bin_path),
            f"--grpc=127.0.0.1:{self.grpc_port}",
            f"--http=127.0.0.1:{self.http_port}",
            f"--control=127.0.0.1:{self.control_port}",
            f"--record={self.record_path}",
            f"--ready-file={self.ready_path}",
        ], work)

    @property
    def control(self) -> str:
        return f"http://127.0.0.1:{self.control_port}"

    def start(self, mode: str | None = None) -> None:
        self.ready_path.unlink(missing_ok=True)
        self.process.argv = [a for a in self.process.argv if not a.startswith("--mode=")]
        self.process.argv.append(f"--mode={mode or self.mode}")
        self.process.spawn()

        def ready():
            if not self.process.alive():
                pytest.fail(f"test backend exited during start\n{self.process.diagnostics()}",
                            pytrace=False)
            return self.ready_path.exists() and requests.get(f"{self.control}/stats", timeout=1).ok

        wait_until("the test backend to listen", ready, START_TIMEOUT,
                   diagnostics=self.process.diagnostics)

    def kill9(self) -> None:
        self.process.kill9()

    def stop(self) -> None:
        self.process.terminate()

    def stats(self) -> dict:
        return requests.get(f"{self.control}/stats", timeout=2).json()

    def headers(self) -> dict:
        return requests.get(f"{self.control}/headers", timeout=2).json()

    def set_mode(self, mode: str) -> None:
        requests.post(f"{self.control}/mode", data=mode, timeout=2).raise_for_status()

    def records(self, signal_name: str | None = None) -> list[dict]:
        """Every recorded item (across restarts), optionally of one signal."""
        out = []
        try:
            text = self.record_path.read_text()
        except FileNotFoundError:
            return out
        for line in text.splitlines():
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
            if signal_name is None or item.get("signal") == signal_name:
                out.append(item)
        return out


DEFAULT_CONFIG = """\
receivers:
  otlp:
    protocols:
      grpc: {{ endpoint: "127.0.0.1:{grpc_port}" }}
      http: {{ endpoint: "127.0.0.1:{http_port}"{http_extra} }}
processors:
  batch: {{ timeout: 200ms, send_batch_size: 512 }}
exporters:
  otlp:
    endpoint: "127.0.0.1:{backend_grpc_port}"
    tls: {{ insecure: true }}
    headers: {{ Authorization: "Bearer test-token", Dash0-Dataset: "e2e" }}
    retry_on_failure: {{ initial_interval: 100ms, max_interval: 500ms }}
    sending_queue: {{ storage: file_storage }}
extensions:
  file_storage: {{ directory: "{data_dir}" }}
  health_check: {{ endpoint: "127.0.0.1:{health_port}" }}
service:
  extensions: [file_storage, health_check]
  telemetry: {{ metrics: {{ address: "127.0.0.1:{metrics_port}" }} }}
  pipelines:
    logs: {{ receivers: [otlp], processors: [batch], exporters: [otlp] }}
    traces: {{ receivers: [otlp], processors: [batch], exporters: [otlp] }}
    metrics: {{ receivers: [otlp], processors: [batch], exporters: [otlp] }}
"""


class Otelspool:
    """otelspool with a generated config; its ports and data dir survive restarts."""

    def __init__(self, bin_path: Path, ports: Ports, work: Path, backend_grpc_port: int,
                 http_extra: str = "") -> None:
        self.grpc_port, self.http_port = ports(), ports()
        self.health_port, self.metrics_port = ports(), ports()
        self.data_dir = work / "otelspool-data"
        self.data_dir.mkdir(exist_ok=True)
        self.config_path = work / "otelspool.yaml"
        self.config_path.write_text(DEFAULT_CONFIG.format(
            grpc_port=self.grpc_port, http_port=self.http_port, http_extra=http_extra,
            backend_grpc_port=backend_grpc_port, data_dir=self.data_dir,
            health_port=self.health_port, metrics_port=self.metrics_port))
        self.process = Process("otelspool", [str(bin_path), f"--config={self.config_path}"], work)

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def healthy(self) -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{self.health_port}/", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def start(self) -> None:
        self.process.spawn()

        def ready():
            if not self.process.alive():
                pytest.fail(f"otelspool exited before its health check answered 200\n"
                            f"config {self.config_path}:\n{self.config_path.read_text()}\n"
                            f"{self.process.diagnostics()}", pytrace=False)
            return self.healthy()

        wait_until(f"otelspool's health check on 127.0.0.1:{self.health_port} to answer 200",
                   ready, START_TIMEOUT, diagnostics=self.process.diagnostics)

    def assert_alive(self, after: str) -> None:
        assert self.process.alive(), f"otelspool died after {after}\n{self.process.diagnostics()}"

    def kill9(self) -> None:
        self.process.kill9()

    def terminate(self) -> int | None:
        return self.process.terminate()

    def metrics(self) -> dict[str, float]:
        """Prometheus samples keyed by `name{labels}` exactly as exposed."""
        text = requests.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).text
        samples = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            key, _, value = line.rpartition(" ")
            try:
                samples[key.strip()] = float(value)
            except ValueError:
                continue
        return samples

    def metric(self, name: str, **labels: str) -> float | None:
        """Sum of the samples of `name` whose labels include `labels`."""
        total, found = 0.0, False
        for key, value in self.metrics().items():
            metric_name, _, rest = key.partition("{")
            if metric_name != name:
                continue
            if all(f'{k}="{v}"' in rest for k, v in labels.items()):
                total, found = total + value, True
        return total if found else None


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture
def free_port() -> Ports:
    """Callable returning a free, distinct port on 127.0.0.1 each time."""
    return Ports()


@pytest.fixture(scope="session")
def testbackend_bin() -> Path:
    path = binary("OTELSPOOL_TESTBACKEND_BIN", "otelspool-testbackend")
    if not path.exists():
        pytest.skip(f"test backend binary not found at {path}; "
                    "build it with `cargo build -p otelspool-testkit`")
    return path


@pytest.fixture(scope="session")
def otelspool_bin() -> Path:
    path = binary("OTELSPOOL_BIN", "otelspool")
    if not path.exists():
        pytest.skip(f"otelspool binary not found at {path}; build it with `cargo build -p otelspool`")
    return path


@pytest.fixture
def make_backend(testbackend_bin, free_port, tmp_path, request):
    """Factory: a TestBackend (not started); stopped at teardown, stderr shown on failure."""
    made: list[TestBackend] = []

    def make(mode: str = "ok") -> TestBackend:
        backend = TestBackend(testbackend_bin, free_port, tmp_path, mode)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.process.kill9()
        _report(request, backend.process)


@pytest.fixture
def backend(make_backend) -> TestBackend:
    """A running test backend in mode `ok`."""
    b = make_backend()
    b.start()
    return b


@pytest.fixture
def make_otelspool(otelspool_bin, free_port, tmp_path, request):
    """Factory: an Otelspool (not started) exporting to a backend's gRPC port."""
    made: list[Otelspool] = []

    def make(backend_grpc_port: int, http_extra: str = "") -> Otelspool:
        spool = Otelspool(otelspool_bin, free_port, tmp_path, backend_grpc_port, http_extra)
        made.append(spool)
        return spool

    yield make
    for spool in made:
        spool.process.kill9()
        _report(request, spool.process)


@pytest.fixture
def otelspool(make_otelspool, backend) -> Otelspool:
    """A running otelspool exporting to the running `backend`."""
    spool = make_otelspool(backend.grpc_port)
    spool.start()
    return spool


def _report(request, process: Process) -> None:
    """Attach a process's stderr to the report of a failed test."""
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(f"\n{process.diagnostics()}")


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


# ---------------------------------------------------------------------------------------------
# OpenTelemetry SDK helpers


def make_log_batch(bodies: list[str], attributes: dict, service: str):
    """SDK log records ready for `LogExporter.export`, for the installed SDK version."""
    from opentelemetry._logs import LogRecord, SeverityNumber
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    resource = Resource.create({"service.name": service})
    scope = InstrumentationScope("otelspool-e2e")
    now = time.time_ns()
    batch = []
    for body in bodies:
        record = LogRecord(timestamp=now, observed_timestamp=now, body=body,
                           severity_text="INFO", severity_number=SeverityNumber.INFO,
                           attributes=dict(attributes))
        try:  # SDK >= 1.39: the exporter takes ReadableLogRecord
            from opentelemetry.sdk._logs import ReadableLogRecord
            batch.append(ReadableLogRecord(log_record=record, resource=resource,
                                           instrumentation_scope=scope))
        except ImportError:  # older SDKs: LogData(SDK LogRecord, scope)
            from opentelemetry.sdk._logs import LogData
            from opentelemetry.sdk._logs import LogRecord as SdkLogRecord
            sdk_record = SdkLogRecord(timestamp=now, observed_timestamp=now, body=body,
                                      attributes=dict(attributes), resource=resource)
            batch.append(LogData(sdk_record, scope))
    return batch


def delivery_report(acked: set[str], delivered_bodies: list[str], sent: int | None = None) -> dict:
    """Counts for an at-least-once check: lost = acknowledged but never delivered."""
    unique = set(delivered_bodies)
    report = {
        "sent": sent if sent is not None else len(acked),
        "acked": len(acked),
        "delivered": len(delivered_bodies),
        "delivered_unique": len(unique),
        "duplicates": len(delivered_bodies) - len(unique),
        "lost": len(acked - unique),
        "delivered_not_acked": len(unique - acked),
    }
    print(f"\ndelivery: {json.dumps(report)}")
    return report


class AckingSender:
    """Sends batches of uniquely numbered log records with the SDK's OTLP/gRPC exporter in a
    thread; the exporter's SUCCESS/FAILURE per call is the acknowledgement."""

    def __init__(self, endpoint: str, run_id: str, batch_size: int = 50, pause: float = 0.02,
                 export_timeout: float = 3.0) -> None:
        import threading

        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        self.exporter = OTLPLogExporter(endpoint=f"http://{endpoint}", insecure=True,
                                        timeout=export_timeout)
        self.run_id = run_id
        self.batch_size = batch_size
        self.pause = pause
        self.sent = 0
        self.acked: set[str] = set()
        self.failed_batches = 0
        self.ok_batches = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="acking-sender", daemon=True)
        self._seq = 0

    def prefix(self) -> str:
        return f"{self.run_id} seq "

    def _run(self) -> None:
        from opentelemetry.sdk._logs.export import LogRecordExportResult

        while not self._stop.is_set():
            bodies = [f"{self.prefix()}{self._seq + i}" for i in range(self.batch_size)]
            self._seq += self.batch_size
            batch = make_log_batch(bodies, {"emerge.job_id": self.run_id,
                                            "emerge.workflow_id": "wf-e2e"}, "e2e-acking")
            self.sent += len(bodies)
            try:
                result = self.exporter.export(batch)
            except Exception:  # noqa: BLE001 - an exception is simply "not acknowledged"
                result = None
            if result == LogRecordExportResult.SUCCESS:
                self.acked.update(bodies)
                self.ok_batches += 1
            else:
                self.failed_batches += 1
            time.sleep(self.pause)

    def start(self) -> "AckingSender":
        self._thread.start()
        return self

    def wait_acked(self, at_least: int, timeout: float = 30.0) -> None:
        wait_until(f"{at_least} acknowledged records (have {len(self.acked)})",
                   lambda: len(self.acked) >= at_least, timeout)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"sender did not stop within {timeout}s"
        self.exporter.shutdown()
