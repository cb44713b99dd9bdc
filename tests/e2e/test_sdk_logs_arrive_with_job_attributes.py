"""The official OpenTelemetry Python SDK's OTLP exporters deliver through otelspool intact."""

from __future__ import annotations

from collections import Counter

from conftest import DELIVERY_TIMEOUT, wait_until

JOBS = ["job-a", "job-b", "job-c", "job-d"]
PER_JOB = 50  # 200 log records per transport


def _send_logs(exporter, service: str) -> set[str]:
    """Emit PER_JOB records for each job through a LoggerProvider with a batch processor."""
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    provider = LoggerProvider(resource=Resource.create({"service.name": service}))
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter, schedule_delay_millis=100))
    logger = provider.get_logger("otelspool-e2e")
    bodies = set()
    for job in JOBS:
        for i in range(PER_JOB):
            body = f"{service} {job} line {i}"
            logger.emit(body=body, severity_text="INFO",
                        attributes={"emerge.job_id": job, "emerge.workflow_id": f"wf-{job}"})
            bodies.add(body)
    assert provider.force_flush(timeout_millis=15_000), "SDK force_flush timed out"
    provider.shutdown()
    return bodies


def _assert_logs_arrived(backend, service: str, bodies: set[str]) -> None:
    def arrived():
        got = [r for r in backend.records("logs") if r["resource"].get("service.name") == service]
        return got if len({r["body"] for r in got}) >= len(bodies) else None

    got = wait_until(f"{len(bodies)} log records of {service} at the backend", arrived,
                     DELIVERY_TIMEOUT, diagnostics=lambda: f"backend stats: {backend.stats()}")
    per_job = Counter(r["attributes"].get("emerge.job_id") for r in got)
    print(f"\n{service}: sent={len(bodies)} delivered={len(got)} per_job={dict(per_job)}")
    assert len(got) == len(bodies), f"{len(got) - len(bodies)} duplicate deliveries"
    assert {r["body"] for r in got} == bodies
    for r in got:
        job = r["body"].split()[1]
        assert r["attributes"].get("emerge.job_id") == job, r
        assert r["attributes"].get("emerge.workflow_id") == f"wf-{job}", r
        assert r["resource"].get("service.name") == service, r
    assert per_job == {job: PER_JOB for job in JOBS}


def test_grpc_log_exporter_delivers_every_record_with_attributes(backend, otelspool):
    """Scenario: the SDK's OTLP/gRPC log exporter sends 200 records for 4 jobs via otelspool.
    Guarantees: each record arrives exactly once with job attributes and resource intact."""
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

    exporter = OTLPLogExporter(endpoint=f"http://{otelspool.grpc_endpoint}", insecure=True,
                               timeout=10)
    bodies = _send_logs(exporter, "e2e-grpc")
    _assert_logs_arrived(backend, "e2e-grpc", bodies)

    headers = backend.headers()
    print(f"backend saw headers: {headers}")
    assert headers["authorization_is_test_token"], headers
    assert headers["dash0_dataset"] == "e2e", headers

    accepted = wait_until(
        "otelcol_receiver_accepted_log_records{transport=grpc} to reach 200",
        lambda: otelspool.metric("otelcol_receiver_accepted_log_records",
                                 receiver="otlp", transport="grpc") == len(bodies),
        10, diagnostics=lambda: str(otelspool.metrics()))
    sent = wait_until(
        "otelcol_exporter_sent_log_records to reach 200",
        lambda: otelspool.metric("otelcol_exporter_sent_log_records", exporter="otlp") == len(bodies),
        10, diagnostics=lambda: str(otelspool.metrics()))
    print(f"otelspool metrics: accepted={accepted} sent={sent}")


def test_http_log_exporter_delivers_every_record_with_attributes(backend, otelspool):
    """Scenario: the SDK's OTLP/HTTP (protobuf) log exporter sends 200 records via otelspool.
    Guarantees: each record arrives exactly once with job attributes and resource intact."""
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    exporter = OTLPLogExporter(endpoint=f"{otelspool.http_base}/v1/logs", timeout=10)
    bodies = _send_logs(exporter, "e2e-http")
    _assert_logs_arrived(backend, "e2e-http", bodies)
    wait_until(
        "otelcol_receiver_accepted_log_records{transport=http} to reach 200",
        lambda: otelspool.metric("otelcol_receiver_accepted_log_records",
                                 receiver="otlp", transport="http") == len(bodies),
        10, diagnostics=lambda: str(otelspool.metrics()))


def test_sdk_trace_and_metric_exports_arrive(backend, otelspool):
    """Scenario: one span and one counter point exported by the SDK over OTLP/gRPC.
    Guarantees: exactly one span and one point of that metric arrive, with attributes."""
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics import Counter, MeterProvider
    from opentelemetry.sdk.metrics.export import (AggregationTemporality,
                                                  PeriodicExportingMetricReader)
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    endpoint = f"http://{otelspool.grpc_endpoint}"
    resource = Resource.create({"service.name": "e2e-signals"})

    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=10)))
    with tracer_provider.get_tracer("otelspool-e2e").start_as_current_span(
            "e2e-span", attributes={"emerge.job_id": "job-span"}) as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
    assert tracer_provider.force_flush(15_000)
    tracer_provider.shutdown()

    # Delta temporality: the export at shutdown has no new point, so exactly one arrives.
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=endpoint, insecure=True, timeout=10,
                           preferred_temporality={Counter: AggregationTemporality.DELTA}),
        export_interval_millis=3_600_000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    counter = meter_provider.get_meter("otelspool-e2e").create_counter("e2e.jobs.completed")
    counter.add(3, {"emerge.job_id": "job-metric"})
    assert meter_provider.force_flush(15_000)
    meter_provider.shutdown()

    def arrived():
        spans = [s for s in backend.records("traces") if s["name"] == "e2e-span"]
        points = [p for p in backend.records("metrics") if p["name"] == "e2e.jobs.completed"]
        return (spans, points) if spans and points else None

    spans, points = wait_until("the span and the metric point at the backend", arrived,
                               DELIVERY_TIMEOUT, diagnostics=lambda: str(backend.stats()))
    print(f"\nspans={len(spans)} points={len(points)}")
    assert len(spans) == 1, spans
    assert spans[0]["trace_id"] == trace_id
    assert spans[0]["attributes"] == {"emerge.job_id": "job-span"}
    assert spans[0]["resource"]["service.name"] == "e2e-signals"
    assert len(points) == 1, points
    assert points[0]["value"] == "3", points
    assert points[0]["attributes"] == {"emerge.job_id": "job-metric"}, points
