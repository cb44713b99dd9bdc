"""otelspool's /metrics after a known scenario (see selfmetrics.py): parsed with the Prometheus
text parser, every count asserted exactly."""

from __future__ import annotations

import tomllib

import selfmetrics as sm
from conftest import REPO
from selfmetrics import value

EXPORTER = {"exporter": "otlp"}
HTTP = {"receiver": "otlp", "transport": "http"}


def test_counts_after_accepts_refusals_retries_and_partial_success(make_backend, make_otelspool):
    """Scenario: with the backend down and a queue of 3 requests, 5 requests of 10 log records
    are sent (3 queued, 2 refused: queue full); the backend refuses K exports (retries), then
    accepts the 3 with 2 records of each rejected through partial success, then accepts 2 more
    requests of 10 in full; plus one span, one metric point, one malformed request.
    Guarantees: the exposition parses; N = 50 log records accepted, M = 20 refused (2 requests,
    reason queue_full) and counted as enqueue failures, K retries equal to the exports the
    backend refused, R = 6 rejected (also counted as failed, not dead-lettered), 44 sent; the
    exporter counters of every queue exist from the start (0 spans rejected); the queues are empty;
    `otelspool_build_info` is 1 with the version and the checkout's commit; the memory limit
    and the memory limiter's soft limit (80 % of it) are exposed."""
    s = sm.run_known_scenario(make_backend, make_otelspool)
    f = s.families
    print(f"\nscenario: statuses={s.statuses} retries={s.retries_seen_by_backend}")

    assert s.statuses == [200, 200, 200, 503, 503, 200, 200, 200, 200, 400]
    n = (sm.QUEUE_SIZE + sm.LATER_REQUESTS) * sm.RECORDS_PER_REQUEST
    m = (sm.FIRST_REQUESTS - sm.QUEUE_SIZE) * sm.RECORDS_PER_REQUEST
    r = sm.QUEUE_SIZE * sm.PARTIAL_REJECTED_PER_EXPORT
    assert (n, m, r) == (50, 20, 6)

    assert value(f, "otelcol_receiver_accepted_log_records", **HTTP) == n
    assert value(f, "otelcol_receiver_refused_log_records", **HTTP) == m
    assert value(f, "otelspool_receiver_refused_requests", reason="queue_full", **HTTP) == 2
    assert value(f, "otelspool_receiver_refused_requests") == 2
    assert value(f, "otelcol_exporter_enqueue_failed_log_records", **EXPORTER) == m
    assert value(f, "otelcol_receiver_failed_log_records", **HTTP) == 0  # items unknown
    assert value(f, "otelcol_receiver_accepted_spans", **HTTP) == 1
    assert value(f, "otelcol_receiver_accepted_metric_points", **HTTP) == 1

    k = s.retries_seen_by_backend
    assert k >= 3
    assert value(f, "otelspool_exporter_send_retries", exporter="otlp", data_type="logs") == k
    assert value(f, "otelspool_exporter_send_retries") == k

    assert value(f, "otelspool_exporter_rejected_log_records", **EXPORTER) == r
    assert s.backend.stats()["partial_rejected"] == r
    assert value(f, "otelcol_exporter_send_failed_log_records", **EXPORTER) == r
    assert value(f, "otelcol_exporter_sent_log_records", **EXPORTER) == n - r
    assert value(f, "otelcol_exporter_sent_spans", **EXPORTER) == 1
    assert value(f, "otelcol_exporter_sent_metric_points", **EXPORTER) == 1
    assert value(f, "otelspool_exporter_rejected_spans", **EXPORTER) == 0  # exists from start
    assert value(f, "otelspool_exporter_dead_lettered_log_records", **EXPORTER) == 0
    assert s.backend.stats()["unique_log_records"] == n

    assert value(f, "otelcol_exporter_queue_size") == 0
    assert value(f, "otelcol_exporter_queue_capacity", exporter="otlp",
                 data_type="logs") == sm.QUEUE_SIZE
    assert value(f, "otelspool_exporter_queue_dropped_log_records", **EXPORTER) == 0
    assert value(f, "otelspool_exporter_send_latency_seconds_count", exporter="otlp",
                 data_type="logs") == k + sm.QUEUE_SIZE + sm.LATER_REQUESTS

    info = sm.labels_of(f, "otelspool_build_info")
    version = tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["package"]["version"]
    assert info == [{"version": version, "commit": sm.git_commit()}], info
    assert value(f, "otelspool_build_info") == 1

    limit = value(f, "otelspool_process_memory_limit_bytes")
    with open("/proc/meminfo") as meminfo:
        total = int(next(l for l in meminfo if l.startswith("MemTotal:")).split()[1]) * 1024
    assert limit is not None and 0 < limit <= total
    soft = value(f, "otelspool_memory_limiter_soft_limit_bytes", processor="memory_limiter")
    assert soft is not None and abs(soft - limit * 0.8) <= limit * 0.01 + 100
    assert 0 < value(f, "otelcol_process_memory_rss") < limit
