"""SIGTERM while the backend is down: otelspool exits cleanly and keeps its queue (otelcol
deletes queued items when it shuts down during an outage, core #15677)."""

from __future__ import annotations

import time
import uuid

from conftest import DELIVERY_TIMEOUT, AckingSender, delivery_report, wait_until


def test_sigterm_during_an_outage_keeps_every_acknowledged_record(make_backend, make_otelspool):
    """Scenario: the backend is down; a client's records are acknowledged; otelspool gets
    SIGTERM; it is started again with the backend up.
    Guarantees: it exits 0 promptly, nothing queued is deleted, and after the restart every
    acknowledged record is delivered."""
    backend = make_backend()  # down
    spool = make_otelspool(backend.grpc_port)
    spool.start()
    sender = AckingSender(spool.grpc_endpoint, f"sigterm-{uuid.uuid4().hex[:8]}").start()
    try:
        sender.wait_acked(1000)
    finally:
        sender.stop()
    queued = spool.metric("otelspool_exporter_queue_items", exporter="otlp", data_type="logs")
    assert queued and queued > 0, "nothing was queued: the backend was not down"
    started = time.monotonic()
    code = spool.terminate()
    took = time.monotonic() - started
    print(f"\nacked {len(sender.acked)}, queued {queued:.0f}; SIGTERM exit {code} after {took:.1f}s")
    assert code == 0, f"otelspool exited with {code} on SIGTERM"
    assert took < 12, "shutdown during an outage took too long"
    assert any(spool.data_dir.rglob("*.seg")), "the queue was deleted at shutdown"

    backend.start()
    spool.start()
    prefix = sender.prefix()
    wait_until("every acknowledged record at the backend",
               lambda: sender.acked <= {r["body"] for r in backend.records("logs")
                                        if r["body"].startswith(prefix)},
               DELIVERY_TIMEOUT, diagnostics=spool.process.diagnostics)
    bodies = [r["body"] for r in backend.records("logs") if r["body"].startswith(prefix)]
    report = delivery_report(sender.acked, bodies, sent=sender.sent)
    assert report["lost"] == 0
