"""otelspool keeps acknowledging while the backend is down and delivers everything later."""

from __future__ import annotations

import time
import uuid

from conftest import DELIVERY_TIMEOUT, AckingSender, delivery_report, wait_until


def test_backend_outage_then_recovery(backend, otelspool):
    """Scenario: the backend is SIGKILLed while a client sends, then restarted on the same port.
    Guarantees: otelspool acks during the outage; every acked record is delivered (lost == 0)."""
    sender = AckingSender(otelspool.grpc_endpoint, f"outage-{uuid.uuid4().hex[:8]}").start()
    try:
        sender.wait_acked(500)
        backend.kill9()
        acked_at_kill = len(sender.acked)
        time.sleep(3)  # outage: otelspool must keep acknowledging
        acked_during_outage = len(sender.acked) - acked_at_kill
        otelspool.assert_alive("the backend went away")
        backend.start()
        sender.wait_acked(len(sender.acked) + 500)
    finally:
        sender.stop()
    print(f"\nacked during the outage: {acked_during_outage}; "
          f"failed batches: {sender.failed_batches}; backend starts: {backend.process.starts}")
    assert acked_during_outage > 0, "otelspool stopped acknowledging while the backend was down"
    assert sender.failed_batches == 0, "otelspool refused batches during the backend outage"

    def delivered():
        bodies = [r["body"] for r in backend.records("logs")
                  if r["body"].startswith(sender.prefix())]
        return bodies if sender.acked <= set(bodies) else None

    wait_until("every acknowledged record at the backend", delivered, DELIVERY_TIMEOUT,
               diagnostics=lambda: f"{otelspool.process.diagnostics()}\nbackend: {backend.stats()}")
    bodies = [r["body"] for r in backend.records("logs") if r["body"].startswith(sender.prefix())]
    report = delivery_report(sender.acked, bodies, sent=sender.sent)
    print(f"backend stats: {backend.stats()}")
    assert report["lost"] == 0
