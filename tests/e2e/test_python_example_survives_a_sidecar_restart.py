"""examples/python (the app side of the rollout, official OpenTelemetry Python SDK) against the
real otelspool binary and the testkit backend: the sidecar is stopped and restarted while the
app runs; then the per-job flush at the end of a job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest

from conftest import DELIVERY_TIMEOUT, REPO, wait_until

EXAMPLE = REPO / "examples" / "python"
sys.path.insert(0, str(EXAMPLE))
import otel_integration  # noqa: E402  (the example's own reading of a flush answer)
APP_EXIT_TIMEOUT = 60.0


class App:
    """examples/python/app.py as a child process."""

    def __init__(self, tmp: Path, spool, args: list[str]) -> None:
        self.service = f"example-{uuid.uuid4().hex[:8]}"
        self.progress = tmp / "app-progress"
        self.report_path = tmp / "app-report.json"
        self.stop_file = tmp / "app-stop"
        self.stderr_path = tmp / "app.stderr"
        env = {**os.environ,
               "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{spool.grpc_endpoint}",
               "OTELSPOOL_HEALTH_ENDPOINT": f"http://127.0.0.1:{spool.health_port}",
               "OTEL_SERVICE_NAME": self.service,
               "OTEL_BLRP_MAX_QUEUE_SIZE": "20000"}
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "app.py", "--progress", str(self.progress),
                 "--report", str(self.report_path), *args],
                cwd=EXAMPLE, env=env, stdin=subprocess.DEVNULL, stdout=err, stderr=err)

    def _progress(self) -> dict:
        try:
            return json.loads(self.progress.read_text())
        except (FileNotFoundError, ValueError):
            return {"logged": 0, "failed_attempts": 0}

    def logged_so_far(self) -> int:
        return self._progress()["logged"]

    def failed_exports(self) -> int:
        """Exports the SDK's exporter gave up on (after its own retries, ~10 s)."""
        return self._progress()["failed_attempts"]

    def stderr(self) -> str:
        return "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-40:])

    def wait_exit(self) -> dict:
        try:
            code = self.proc.wait(timeout=APP_EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"the app did not exit within {APP_EXIT_TIMEOUT}s\n{self.stderr()}",
                        pytrace=False)
        assert code == 0, f"the app exited with {code}\n{self.stderr()}"
        return json.loads(self.report_path.read_text())

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def expected_ids(report: dict) -> set[str]:
    return {f"{job}-{step}" for job, n in report["logged"].items() for step in range(n)}


def delivered(backend, service: str) -> list[dict]:
    return [r for r in backend.records("logs") if r["resource"].get("service.name") == service]


def record_id(r: dict) -> str:
    return r["body"].rsplit("id=", 1)[1]


def test_app_keeps_running_and_loses_nothing_across_a_sidecar_restart(
        backend, otelspool, tmp_path):
    """Scenario: the example app logs 2 jobs at 50 records/s through otelspool; after some
    records arrived the sidecar is stopped (SIGTERM) for longer than the SDK exporter's own
    retries last (until it gave up on a batch) and 50+ records, the sidecar is started again
    on the same queue, the app logs on, then finishes and exits.
    Guarantees: the app never stops logging while the sidecar is down and exits 0 by itself;
    the SDK buffer abandoned nothing; every record the app logged (before, during and after the
    outage) is at the backend, exactly the set logged, each with its job's `emerge.job_id` and
    `emerge.workflow_id`."""
    app = App(tmp_path, otelspool, ["--jobs", "2", "--steps", "40", "--rate", "50",
                                    "--until-file", str(tmp_path / "app-stop")])
    try:
        wait_until("60 records delivered while the sidecar is up",
                   lambda: len(delivered(backend, app.service)) >= 60, DELIVERY_TIMEOUT,
                   diagnostics=app.stderr)
        assert otelspool.terminate() == 0, otelspool.process.diagnostics()
        down_at = app.logged_so_far()
        # Down until the SDK's own exporter has given up on a batch at least once (its retries
        # last ~10 s): a batch the SDK alone would have lost, which the example retries.
        wait_until("the SDK's exporter to give up on a batch while the sidecar is down",
                   lambda: app.failed_exports() >= 1, DELIVERY_TIMEOUT, diagnostics=app.stderr)
        wait_until("the app to log 50 more records while the sidecar is down",
                   lambda: app.logged_so_far() >= down_at + 50, DELIVERY_TIMEOUT,
                   diagnostics=app.stderr)
        assert app.proc.poll() is None, f"the app died while the sidecar was down\n{app.stderr()}"
        logged_while_down = app.logged_so_far() - down_at
        otelspool.start()
        up_at = app.logged_so_far()
        wait_until("the app to log 30 more records after the restart",
                   lambda: app.logged_so_far() >= up_at + 30, DELIVERY_TIMEOUT,
                   diagnostics=app.stderr)
        app.stop_file.touch()
        report = app.wait_exit()
    finally:
        app.kill()

    want = expected_ids(report)
    total = sum(report["logged"].values())
    assert len(want) == total
    got = wait_until(f"all {total} records of the app at the backend",
                     lambda: (lambda rs: rs if {record_id(r) for r in rs} >= want else None)(
                         delivered(backend, app.service)),
                     DELIVERY_TIMEOUT,
                     diagnostics=lambda: f"{app.stderr()}\nbackend: {backend.stats()}")
    ids = Counter(record_id(r) for r in got)
    print(f"\nlogged={total} (≈{logged_while_down} while the sidecar was down) "
          f"exported={report['exported']} abandoned={report['abandoned']} "
          f"failed_attempts={report['failed_attempts']} delivered_unique={len(ids)} "
          f"delivered_total={len(got)}")
    assert set(ids) == want, f"missing {sorted(want - set(ids))[:10]} extra {sorted(set(ids) - want)[:10]}"
    assert len(ids) == total
    assert report["abandoned"] == 0, report
    assert report["exported"] >= total, report
    assert report["failed_attempts"] > 0, "the outage was seen by the app's exporter"
    for r in got:
        job = record_id(r).rsplit("-", 1)[0]
        assert r["attributes"].get("emerge.job_id") == job, r
        assert r["attributes"].get("emerge.workflow_id") == f"wf-{job[-1]}", r


def with_job_ledger(spool) -> None:
    """Restarts `spool` with the job ledger listed in its extensions."""
    spool.terminate()
    text = spool.config_path.read_text()
    text = text.replace("  health_check:", "  job_ledger: {}\n  health_check:", 1)
    text = text.replace("extensions: [file_storage, health_check]",
                        "extensions: [file_storage, health_check, job_ledger]", 1)
    spool.config_path.write_text(text)
    spool.start()


def test_job_end_flush_reports_the_job_delivered(backend, otelspool, tmp_path):
    """Scenario: the example app runs 2 jobs of 25 records with the sidecar up; at each job's
    end it flushes the SDK and calls `POST /v1/jobs/{id}/flush?timeout=30s` on the sidecar.
    Guarantees: the flush answers 200 with received == delivered == the records the job
    logged (the sidecar runs with `job_ledger`; a 404 fails)."""
    with_job_ledger(otelspool)
    app = App(tmp_path, otelspool, ["--jobs", "2", "--steps", "25", "--rate", "200"])
    try:
        report = app.wait_exit()
    finally:
        app.kill()
    flushes = report["flushes"]
    assert set(flushes) == set(report["logged"]), report
    print(f"\nflush answers: {json.dumps(flushes)}")
    for job, f in flushes.items():
        assert f["http_status"] == 200, f"job {job}: {f}"
        received, done = otel_integration.coverage(f["answer"])
        assert (received, done) == (report["logged"][job], report["logged"][job]), f
        assert f["answer"].get("all_delivered") is True, f
    assert len(delivered(backend, app.service)) >= sum(report["logged"].values())
