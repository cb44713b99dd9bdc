"""The app side of the otelspool rollout: what ComfyUI's `otel_integration.py` should do.

Uses only the official OpenTelemetry Python SDK (requirements.txt). Call `setup()` once at start,
wrap each job in `with telemetry.job(job_id, workflow_id):`, log with the standard `logging`
module, and call `telemetry.shutdown()` at exit (also registered with `atexit`).

- Endpoint: `OTEL_EXPORTER_OTLP_ENDPOINT` (default `http://localhost:4317`), OTLP/gRPC.
  `http://...` or a local host without a scheme (localhost, 127.x, ::1, otel-collector) means
  plaintext: the sidecar is on the same machine. `https://...` or any other host means TLS,
  with the system roots (or `OTEL_EXPORTER_OTLP_CERTIFICATE`). The choice is logged at start.
- Every record carries `emerge.job_id` and `emerge.workflow_id` of the job it was logged in
  (a context variable, so threads and asyncio tasks of one job keep it).
- When the sidecar is down the app never blocks and never crashes: records wait in the SDK's
  bounded buffer (`OTEL_BLRP_MAX_QUEUE_SIZE`, oldest kept, newest dropped when full, counted),
  and a failed export is retried with backoff (0.5 s doubling to 5 s) until it succeeds, so
  what was buffered arrives once the sidecar is back. At exit the retries stop after
  `shutdown_timeout` seconds: no hang.
- At the end of a job, `job_done()` flushes the SDK's buffer, then asks the sidecar to flush
  the job (`POST /v1/jobs/{id}/flush?timeout=30s` on its health endpoint, port 13133) and logs
  the coverage (delivered / received). A sidecar without the job ledger answers 404: that is
  logged once, not an error.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import ipaddress
import json
import logging
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogExportResult
from opentelemetry.sdk.resources import Resource

log = logging.getLogger("otel_integration")

JOB_ID = "emerge.job_id"
WORKFLOW_ID = "emerge.workflow_id"
LOCAL_HOSTS = {"localhost", "otel-collector"}

_job: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("emerge_job",
                                                                           default=None)


@dataclass(frozen=True)
class Endpoint:
    """Where the app exports, and how."""

    url: str            # what the gRPC exporter is given (scheme stripped)
    host: str
    port: int
    insecure: bool      # plaintext (local sidecar) or TLS (remote collector)

    def describe(self) -> str:
        return f"{self.host}:{self.port} over {'plaintext (local sidecar)' if self.insecure else 'TLS'}"


def _is_local(host: str) -> bool:
    if host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_endpoint(raw: str | None) -> Endpoint:
    """Reads an `OTEL_EXPORTER_OTLP_ENDPOINT` value: scheme decides TLS; without one, local
    hosts are plaintext and others TLS."""
    raw = (raw or "http://localhost:4317").strip()
    parsed = urllib.parse.urlsplit(raw if "://" in raw else f"//{raw}")
    host = parsed.hostname or "localhost"
    port = parsed.port or 4317
    if parsed.scheme == "http":
        insecure = True
    elif parsed.scheme == "https":
        insecure = False
    else:
        insecure = _is_local(host)
    shown_host = f"[{host}]" if ":" in host else host
    return Endpoint(url=f"{shown_host}:{port}", host=host, port=port, insecure=insecure)


class RetryingExporter:
    """Wraps an SDK exporter: a failed batch is retried with backoff until it is accepted or
    the app shuts down. The SDK's own exporter gives up after its timeout (a sidecar restart
    would lose that batch); while this retries, new records wait in the processor's bounded
    buffer, so the app itself never waits."""

    def __init__(self, inner, first_delay: float = 0.5, max_delay: float = 5.0) -> None:
        self._inner = inner
        self._first, self._max = first_delay, max_delay
        self._stopping = threading.Event()
        self.exported = 0       # records the sidecar acknowledged
        self.abandoned = 0      # records given up on at shutdown
        self.failed_attempts = 0

    def export(self, batch):
        delay = self._first
        while True:
            result = self._inner.export(batch)
            if result == type(result).SUCCESS:
                self.exported += len(batch)
                return result
            self.failed_attempts += 1
            if self._stopping.wait(delay):
                self.abandoned += len(batch)
                log.warning("shutting down: %d records not delivered to the sidecar", len(batch))
                return result
            delay = min(delay * 2, self._max)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def stop_retrying(self) -> None:
        self._stopping.set()

    def shutdown(self, timeout_millis: float = 30_000, **_kwargs) -> None:
        self._stopping.set()
        self._inner.shutdown(timeout_millis=timeout_millis)


class JobHandler(logging.Handler):
    """A `logging` handler that emits each record through the OpenTelemetry Logs API with the
    current job's ids as attributes."""

    def __init__(self, provider: LoggerProvider) -> None:
        super().__init__()
        self._logger = provider.get_logger("otel_integration")

    def emit(self, record: logging.LogRecord) -> None:
        # The SDK's and this module's own messages (export retries) stay local: sending them
        # through the exporter that is failing would feed back on itself.
        if record.name.startswith(("opentelemetry", "otel_integration")):
            return
        try:
            attributes = {"code.function.name": record.funcName, "logger.name": record.name}
            job = _job.get()
            if job is not None:
                attributes[JOB_ID], attributes[WORKFLOW_ID] = job
            self._logger.emit(body=record.getMessage(), severity_text=record.levelname,
                              attributes=attributes)
        except Exception:  # noqa: BLE001 - telemetry must never break the app
            self.handleError(record)


class Telemetry:
    """What `setup()` returns: the provider, the exporter's counters, job scopes, flushes."""

    def __init__(self, endpoint: Endpoint, health: str | None, service_name: str,
                 max_queue_size: int, shutdown_timeout: float) -> None:
        self.endpoint = endpoint
        self.health = health
        self.shutdown_timeout = shutdown_timeout
        self.exporter = RetryingExporter(OTLPLogExporter(endpoint=endpoint.url,
                                                         insecure=endpoint.insecure,
                                                         timeout=10))
        self.provider = LoggerProvider(resource=Resource.create({"service.name": service_name}))
        self.provider.add_log_record_processor(BatchLogRecordProcessor(
            self.exporter, max_queue_size=max_queue_size, schedule_delay_millis=500))
        self.handler = JobHandler(self.provider)
        self._ledger_missing_logged = False
        self._closed = False

    @contextlib.contextmanager
    def job(self, job_id: str, workflow_id: str):
        """Every record logged inside carries the job's ids."""
        token = _job.set((job_id, workflow_id))
        try:
            yield
        finally:
            _job.reset(token)

    def flush_sdk(self, timeout: float) -> bool:
        """Hands the SDK's buffer to the exporter, waiting at most `timeout` seconds (the SDK's
        own force_flush ignores its timeout while an export retries, so it runs in a thread)."""
        done = threading.Event()

        def run() -> None:
            self.provider.force_flush()
            done.set()

        threading.Thread(target=run, name="otel-flush", daemon=True).start()
        return done.wait(timeout)

    def flush_job(self, job_id: str, timeout: str = "30s") -> dict:
        """Asks the sidecar to deliver everything of `job_id` within `timeout` (Go syntax).
        Returns `{"http_status": code or None, "answer": JSON or None, "error": text or None}`;
        404 means the sidecar has no job ledger (or does not know the job): logged once."""
        if not self.health:
            return {"http_status": None, "answer": None, "error": "no health endpoint"}
        quoted = urllib.parse.quote(job_id, safe="")
        url = f"{self.health}/v1/jobs/{quoted}/flush?timeout={timeout}"
        request = urllib.request.Request(url, method="POST", data=b"")
        try:
            with urllib.request.urlopen(request, timeout=_seconds(timeout) + 5) as answer:
                return {"http_status": answer.status, "answer": _json(answer.read()),
                        "error": None}
        except urllib.error.HTTPError as e:
            body = _json(e.read())
            if e.code == 404:
                if not self._ledger_missing_logged:
                    log.info("the sidecar answered 404 to %s (no job ledger): job coverage is "
                             "not reported", url)
                    self._ledger_missing_logged = True
            else:
                log.warning("job %s: flush answered HTTP %d: %s", job_id, e.code, body)
            return {"http_status": e.code, "answer": body, "error": None}
        except (urllib.error.URLError, OSError) as e:
            log.warning("job %s: cannot ask the sidecar to flush (%s)", job_id, e)
            return {"http_status": None, "answer": None, "error": str(e)}

    def job_done(self, job_id: str, sdk_timeout: float = 10.0) -> dict:
        """End of a job: flush the SDK, flush the job through the sidecar, log the coverage."""
        if not self.flush_sdk(sdk_timeout):
            log.warning("job %s: the SDK could not hand its records to the sidecar within %.0fs;"
                        " they stay buffered and are retried", job_id, sdk_timeout)
        result = self.flush_job(job_id)
        received, delivered = coverage(result["answer"])
        if received is not None and delivered is not None:
            ratio = delivered / received if received else 1.0
            log.info("job %s: %d of %d records delivered (coverage %.1f %%)",
                     job_id, delivered, received, 100 * ratio)
        return result

    def shutdown(self) -> None:
        """Stops within `shutdown_timeout` seconds, whatever the sidecar does."""
        if self._closed:
            return
        self._closed = True
        logging.getLogger().removeHandler(self.handler)
        if not self.flush_sdk(self.shutdown_timeout):
            self.exporter.stop_retrying()
        self.provider.shutdown()
        log.info("telemetry stopped: %d records exported, %d abandoned",
                 self.exporter.exported, self.exporter.abandoned)


def coverage(answer) -> tuple[int | None, int | None]:
    """`received` and `delivered` from a flush answer: otelspool's job ledger puts them under
    `job` (`{"job": {"received": N, "delivered": M, ...}, "flushed": true, ...}`)."""
    if not isinstance(answer, dict):
        return None, None
    for scope in (answer.get("job") or {}, answer, answer.get("counts") or {}):
        if "received" in scope and "delivered" in scope:
            return int(scope["received"]), int(scope["delivered"])
    return None, None


def _json(raw: bytes):
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _seconds(go_duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60}
    for unit in ("ms", "s", "m"):
        if go_duration.endswith(unit):
            return float(go_duration[: -len(unit)]) * units[unit]
    return float(go_duration)


def health_endpoint(endpoint: Endpoint) -> str | None:
    """`OTELSPOOL_HEALTH_ENDPOINT`, else port 13133 on the OTLP endpoint's host when that is a
    local sidecar, else none (a remote collector has no per-job flush)."""
    explicit = os.environ.get("OTELSPOOL_HEALTH_ENDPOINT")
    if explicit:
        return explicit.rstrip("/")
    if endpoint.insecure:
        host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
        return f"http://{host}:13133"
    return None


def setup(service_name: str | None = None, shutdown_timeout: float = 5.0) -> Telemetry:
    """Configures OTLP log export to the sidecar and routes `logging` through it."""
    endpoint = resolve_endpoint(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    name = service_name or os.environ.get("OTEL_SERVICE_NAME") or "comfyui"
    max_queue = int(os.environ.get("OTEL_BLRP_MAX_QUEUE_SIZE", "20000"))
    telemetry = Telemetry(endpoint, health_endpoint(endpoint), name, max_queue, shutdown_timeout)
    logging.getLogger().addHandler(telemetry.handler)
    log.info("exporting telemetry to %s (OTEL_EXPORTER_OTLP_ENDPOINT=%s), job flush via %s",
             endpoint.describe(), os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "<unset>"),
             telemetry.health or "<none>")
    atexit.register(telemetry.shutdown)
    return telemetry
