"""Malformed, oversized and hostile requests are refused cleanly and otelspool keeps serving."""

from __future__ import annotations

import gzip
import json
import uuid

import grpc
import pytest
import requests

from conftest import DELIVERY_TIMEOUT, wait_until

BODY_LIMIT = 1024 * 1024  # max_request_body_size configured for the HTTP receiver
LOGS_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


def valid_request(body: str, trace_id: bytes = b"") -> bytes:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource

    record = LogRecord(body=AnyValue(string_value=body), trace_id=trace_id,
                       attributes=[KeyValue(key="emerge.job_id", value=AnyValue(string_value="bad-input"))])
    return ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        resource=Resource(attributes=[KeyValue(key="service.name",
                                               value=AnyValue(string_value="e2e-bad-input"))]),
        scope_logs=[ScopeLogs(log_records=[record])])]).SerializeToString()


@pytest.fixture
def spool(backend, make_otelspool):
    spool = make_otelspool(backend.grpc_port, http_extra=f", max_request_body_size: {BODY_LIMIT}")
    spool.start()
    return spool


def post(spool, data: bytes, content_type: str = "application/x-protobuf", **headers):
    return requests.post(f"{spool.http_base}/v1/logs", data=data, timeout=30,
                         headers={"Content-Type": content_type, **headers})


def still_serving(spool, backend, after: str) -> None:
    """A valid request succeeds and arrives; the process is alive."""
    spool.assert_alive(after)
    body = f"valid after {after} {uuid.uuid4().hex[:8]}"
    response = post(spool, valid_request(body))
    assert response.status_code == 200, f"valid request after {after}: {response.status_code}"
    wait_until(f"the valid record sent after {after} at the backend",
               lambda: any(r["body"] == body for r in backend.records("logs")), DELIVERY_TIMEOUT)


CASES = [
    ("malformed protobuf", b"\xff\xff\xff\xff\x0f garbage", "application/x-protobuf", {}, {400}),
    ("malformed JSON", b'{"resourceLogs": [', "application/json", {}, {400}),
    ("body over the limit", b"\x0a" * (2 * BODY_LIMIT), "application/x-protobuf", {}, {413}),
    # Built only when run: 256 MiB of zeros, about 256 KiB compressed (under the body limit).
    ("gzip bomb", lambda: gzip.compress(b"\0" * (256 * 1024 * 1024), 9), "application/x-protobuf",
     {"Content-Encoding": "gzip"}, {400, 413}),
    ("wrong content type", b"hello", "text/plain", {}, {415}),
    # otelcol refuses ids of the wrong length on unmarshal; a strict backend would refuse the
    # whole request after the client was told OK.
    ("trace id of 15 bytes", lambda: valid_request("bad trace id", trace_id=b"\x01" * 15),
     "application/x-protobuf", {}, {400}),
    ("json span id of 4 bytes", json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"body": {"stringValue": "bad span id"}, "spanId": "01020304"}]}]}]}).encode(),
     "application/json", {}, {400}),
]


@pytest.mark.parametrize("case, data, content_type, headers, expected",
                         [pytest.param(*c, id=c[0].replace(" ", "_")) for c in CASES])
def test_http_bad_input_is_refused(spool, backend, case, data, content_type, headers, expected):
    """Scenario: one hostile OTLP/HTTP request.
    Guarantees: refused with the right status; a valid request afterwards still succeeds."""
    data = data() if callable(data) else data
    response = post(spool, data, content_type, **headers)
    print(f"\n{case}: {len(data)} bytes -> HTTP {response.status_code}")
    assert response.status_code in expected, f"{case}: got {response.status_code}, want {expected}"
    still_serving(spool, backend, case)


def test_grpc_garbage_is_invalid_argument(spool, backend):
    """Scenario: bytes that are not an ExportLogsServiceRequest over a raw gRPC channel.
    Guarantees: INVALID_ARGUMENT; a valid request afterwards still succeeds."""
    with grpc.insecure_channel(spool.grpc_endpoint) as channel:
        export = channel.unary_unary(LOGS_EXPORT, request_serializer=lambda b: b,
                                     response_deserializer=lambda b: b)
        with pytest.raises(grpc.RpcError) as error:
            export(b"\xff\xff\xff\xff\x0f garbage", timeout=10)
        print(f"\ngrpc garbage -> {error.value.code()} {error.value.details()!r}")
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        body = f"valid grpc after garbage {uuid.uuid4().hex[:8]}"
        export(valid_request(body), timeout=10)
    still_serving(spool, backend, "grpc garbage")
    assert any(r["body"] == body for r in backend.records("logs"))


def test_grpc_span_id_of_the_wrong_length_is_invalid_argument(spool, backend):
    """Scenario: a log record whose span id has 16 bytes, over a raw gRPC channel.
    Guarantees: INVALID_ARGUMENT (as otelcol answers), nothing of it delivered; a valid request
    afterwards still succeeds."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    body = f"bad span id {uuid.uuid4().hex[:8]}"
    request = ExportLogsServiceRequest.FromString(valid_request(body))
    request.resource_logs[0].scope_logs[0].log_records[0].span_id = b"\x02" * 16
    with grpc.insecure_channel(spool.grpc_endpoint) as channel:
        export = channel.unary_unary(LOGS_EXPORT, request_serializer=lambda b: b,
                                     response_deserializer=lambda b: b)
        with pytest.raises(grpc.RpcError) as error:
            export(request.SerializeToString(), timeout=10)
    print(f"\ngrpc span id of 16 bytes -> {error.value.code()} {error.value.details()!r}")
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    still_serving(spool, backend, "grpc bad span id")
    assert not any(r["body"] == body for r in backend.records("logs"))


def test_otlp_json_is_accepted_with_attributes(spool, backend):
    """Scenario: a valid OTLP/JSON request (hex traceId, intValue as a string).
    Guarantees: 200, and the record arrives with its attributes and trace id."""
    body = f"json record {uuid.uuid4().hex[:8]}"
    trace_id = "5b8efff798038103d269b633813fc60c"
    payload = {"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "e2e-json"}}]},
        "scopeLogs": [{"scope": {"name": "e2e"}, "logRecords": [{
            "timeUnixNano": "1700000000000000000",
            "severityText": "INFO",
            "body": {"stringValue": body},
            "traceId": trace_id,
            "spanId": "eee19b7ec3c1b174",
            "attributes": [
                {"key": "emerge.job_id", "value": {"stringValue": "job-json"}},
                {"key": "emerge.attempt", "value": {"intValue": "3"}},
            ],
        }]}],
    }]}
    response = post(spool, json.dumps(payload).encode(), "application/json")
    print(f"\nOTLP/JSON -> HTTP {response.status_code}")
    assert response.status_code == 200, response.text

    got = wait_until("the OTLP/JSON record at the backend",
                     lambda: [r for r in backend.records("logs") if r["body"] == body],
                     DELIVERY_TIMEOUT)
    assert len(got) == 1, got
    assert got[0]["attributes"] == {"emerge.job_id": "job-json", "emerge.attempt": "3"}, got
    assert got[0]["trace_id"] == trace_id
    assert got[0]["resource"]["service.name"] == "e2e-json"
    assert got[0]["time_unix_nano"] == 1700000000000000000
