"""otelspool's own metrics, parsed with a real Prometheus text parser
(`prometheus_client.parser`), and a known scenario that makes every metric appear with values
that can be predicted exactly.

The scenario (`run_known_scenario`), with the backend down at first:
- one exporter `otlp` (gRPC, no compression) whose queue holds 3 requests (`queue_size: 3`)
  per signal, one consumer, and no `batch` processor, so that each queued request is one
  export; a `memory_limiter` with a limit far above the process's memory;
- 5 OTLP/HTTP requests of 10 log records: 3 are queued (30 accepted), 2 refused because the
  queue is full (20 refused);
- the backend refuses the exports it receives with UNAVAILABLE (each one a retry, K in all),
  then switches to `partial:2`: the 3 queued requests are delivered, 2 records of each
  rejected through partial success (R = 6);
- the backend switches to `ok`; 2 more requests of 10 records are accepted and delivered;
- one span, one metric point and one malformed request, so that every signal's series and
  the failure counter exist.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess

import requests

from conftest import DELIVERY_TIMEOUT, REPO, wait_until

RECORDS_PER_REQUEST = 10
QUEUE_SIZE = 3
FIRST_REQUESTS = 5
LATER_REQUESTS = 2
PARTIAL_REJECTED_PER_EXPORT = 2

SCENARIO_CONFIG = """\
receivers:
  otlp:
    protocols:
      grpc: {{ endpoint: "127.0.0.1:{grpc_port}" }}
      http: {{ endpoint: "127.0.0.1:{http_port}" }}
processors:
  memory_limiter: {{ check_interval: 1s, limit_percentage: 90, spike_limit_percentage: 10 }}
exporters:
  otlp:
    endpoint: "127.0.0.1:{backend_grpc_port}"
    tls: {{ insecure: true }}
    compression: none
    retry_on_failure: {{ initial_interval: 50ms, max_interval: 200ms }}
    sending_queue: {{ storage: file_storage, queue_size: {queue_size}, num_consumers: 1 }}
extensions:
  file_storage: {{ directory: "{data_dir}" }}
  health_check: {{ endpoint: "127.0.0.1:{health_port}" }}
service:
  extensions: [file_storage, health_check]
  telemetry: {{ metrics: {{ address: "127.0.0.1:{metrics_port}" }} }}
  pipelines:
    logs: {{ receivers: [otlp], processors: [memory_limiter], exporters: [otlp] }}
    traces: {{ receivers: [otlp], processors: [memory_limiter], exporters: [otlp] }}
    metrics: {{ receivers: [otlp], processors: [memory_limiter], exporters: [otlp] }}
"""


# ---------------------------------------------------------------------------------------------
# Parsing


def scrape(spool) -> str:
    return requests.get(f"http://127.0.0.1:{spool.metrics_port}/metrics", timeout=5).text


def parse(text: str) -> dict:
    """Metric families by their exposed name (a parse error fails the caller)."""
    from prometheus_client.parser import text_string_to_metric_families

    return {family.name: family for family in text_string_to_metric_families(text)}


def exported_names(families: dict) -> set[str]:
    """Every series name a query can use: each family's name, and a histogram's
    `_bucket`, `_sum` and `_count` series."""
    names = set()
    for name, family in families.items():
        if not family.samples:
            continue
        names.add(name)
        if family.type == "histogram":
            names.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
    return names


def value(families: dict, name: str, **labels: str) -> float | None:
    """The sum of the samples of family `name` whose labels include `labels`; None if none.

    The parser reports a counter exposed without `_total` (as otelcol exposes them) under
    its family name, with samples renamed `<name>_total`: both are accepted here. A
    histogram's `_bucket`, `_sum` and `_count` series are found in its family.
    """
    family = families.get(name)
    for suffix in ("_bucket", "_sum", "_count"):
        if family is None and name.endswith(suffix):
            family = families.get(name[:-len(suffix)])
    if family is None:
        return None
    total, found = 0.0, False
    for sample in family.samples:
        if sample.name not in (name, f"{name}_total"):
            continue
        if all(sample.labels.get(k) == v for k, v in labels.items()):
            total, found = total + sample.value, True
    return total if found else None


def labels_of(families: dict, name: str) -> list[dict[str, str]]:
    family = families.get(name)
    return [dict(s.labels) for s in family.samples] if family else []


# Grafana's built-in variables that stand for durations, and what they are replaced with so
# that a dashboard expression parses as PromQL. Other variables ($instance, $job) appear only
# inside label-matcher strings, where PromQL takes any text.
GRAFANA_DURATIONS = re.compile(r"\$\{?__(rate_interval|interval|range)\}?")


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads, from a real PromQL parser (`promql-parser`); a
    Grafana duration variable counts as 5m. A syntax error raises. A selector by
    `{__name__="..."}` counts; a regular expression on `__name__` raises, since what it reads
    cannot be checked."""
    import promql_parser

    tree = promql_parser.parse(GRAFANA_DURATIONS.sub("5m", expr))
    names: set[str] = set()

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            for m in node.matchers.matchers:
                if m.name == "__name__":
                    if m.op != promql_parser.MatchOp.Equal:
                        raise ValueError(f"cannot check a __name__ regular expression in {expr}")
                    names.add(m.value)
        return True

    promql_parser.walk(tree, visit)
    return names


def selectors(expr: str) -> list[tuple[str, dict[str, tuple[str, str]]]]:
    """Each vector selector of an expression: its metric name and its label matchers
    (`label -> (operator, value)`)."""
    import promql_parser

    out = []

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            out.append((node.name, {m.name: (str(m.op), m.value)
                                    for m in node.matchers.matchers}))
        return True

    promql_parser.walk(promql_parser.parse(GRAFANA_DURATIONS.sub("5m", expr)), visit)
    return out


def git_commit() -> str:
    """The short hash of the checkout's HEAD, or `unknown` (what build.rs records)."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


# ---------------------------------------------------------------------------------------------
# Requests


def logs_request(tag: str, n: int = RECORDS_PER_REQUEST) -> bytes:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

    records = [LogRecord(body=AnyValue(string_value=f"{tag}-{i}")) for i in range(n)]
    return ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        scope_logs=[ScopeLogs(log_records=records)])]).SerializeToString()


def traces_request() -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    span = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="scenario",
                start_time_unix_nano=1, end_time_unix_nano=2)
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        scope_spans=[ScopeSpans(spans=[span])])]).SerializeToString()


def metrics_request() -> bytes:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest)
    from opentelemetry.proto.metrics.v1.metrics_pb2 import (Gauge, Metric, NumberDataPoint,
                                                            ResourceMetrics, ScopeMetrics)

    metric = Metric(name="scenario.gauge", gauge=Gauge(data_points=[
        NumberDataPoint(time_unix_nano=1, as_int=1)]))
    return ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(
        scope_metrics=[ScopeMetrics(metrics=[metric])])]).SerializeToString()


def post(spool, path: str, body: bytes) -> int:
    return requests.post(f"{spool.http_base}{path}", data=body, timeout=10,
                         headers={"Content-Type": "application/x-protobuf"}).status_code


# ---------------------------------------------------------------------------------------------
# The scenario


@dataclasses.dataclass
class Scenario:
    spool: object
    backend: object
    families: dict
    text: str
    statuses: list[int]
    retries_seen_by_backend: int


def start_spool(make_backend, make_otelspool):
    backend = make_backend("unavailable")
    backend.start()
    spool = make_otelspool(backend.grpc_port)
    spool.config_path.write_text(SCENARIO_CONFIG.format(
        grpc_port=spool.grpc_port, http_port=spool.http_port,
        backend_grpc_port=backend.grpc_port, data_dir=spool.data_dir, queue_size=QUEUE_SIZE,
        health_port=spool.health_port, metrics_port=spool.metrics_port))
    spool.start()
    return spool, backend


def run_known_scenario(make_backend, make_otelspool) -> Scenario:
    spool, backend = start_spool(make_backend, make_otelspool)
    diag = spool.process.diagnostics

    statuses = [post(spool, "/v1/logs", logs_request(f"first{i}")) for i in range(FIRST_REQUESTS)]
    wait_until("three exports refused by the backend (retries)",
               lambda: backend.stats()["refused_unavailable"] >= 3, DELIVERY_TIMEOUT,
               diagnostics=diag)

    backend.set_mode(f"partial:{PARTIAL_REJECTED_PER_EXPORT}")
    wait_until("the queued requests delivered with partial success",
               lambda: backend.stats()["accepted_requests"] == QUEUE_SIZE, DELIVERY_TIMEOUT,
               diagnostics=diag)
    backend.set_mode("ok")
    statuses += [post(spool, "/v1/logs", logs_request(f"later{i}")) for i in range(LATER_REQUESTS)]
    statuses.append(post(spool, "/v1/traces", traces_request()))
    statuses.append(post(spool, "/v1/metrics", metrics_request()))
    statuses.append(post(spool, "/v1/logs", b"\xff\xff\xff\xff\x0f not protobuf"))

    expected_at_backend = QUEUE_SIZE + LATER_REQUESTS + 2

    def settled():
        families = parse(scrape(spool))
        return (backend.stats()["accepted_requests"] == expected_at_backend
                and value(families, "otelcol_exporter_queue_size") == 0
                and value(families, "otelcol_exporter_in_flight_requests") == 0)

    wait_until("every queue drained and no export in flight", settled, DELIVERY_TIMEOUT,
               diagnostics=diag)
    # Counters and latency histograms are written before a queue entry is acknowledged, so
    # this scrape sees them all.
    text = scrape(spool)
    return Scenario(spool=spool, backend=backend, families=parse(text), text=text,
                    statuses=statuses,
                    retries_seen_by_backend=backend.stats()["refused_unavailable"])
