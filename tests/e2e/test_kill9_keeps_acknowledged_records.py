"""A record otelspool acknowledged survives a SIGKILL of otelspool."""

from __future__ import annotations

import uuid

from conftest import DELIVERY_TIMEOUT, AckingSender, delivery_report, wait_until


def test_kill9_keeps_acknowledged_records(make_backend, make_otelspool):
    """Scenario: backend down, client sends batches, otelspool is SIGKILLed mid-stream, then
    restarted on the same data dir and the backend comes up.
    Guarantees: every record whose export returned SUCCESS is delivered (lost == 0)."""
    backend = make_backend()  # ports allocated, not started: the queue must hold everything
    otelspool = make_otelspool(backend.grpc_port)
    otelspool.start()

    sender = AckingSender(otelspool.grpc_endpoint, f"kill9-{uuid.uuid4().hex[:8]}",
                          export_timeout=2.0).start()
    try:
        sender.wait_acked(1000)
        otelspool.kill9()  # mid-stream: the sender is still exporting
        acked_before_kill = len(sender.acked)
    finally:
        sender.stop()
    sent = sender.sent
    print(f"\nacked before the kill: {acked_before_kill}; after: {len(sender.acked)}; "
          f"failed batches: {sender.failed_batches}")

    otelspool.start()
    backend.start()

    def delivered():
        bodies = [r["body"] for r in backend.records("logs")
                  if r["body"].startswith(sender.prefix())]
        return bodies if sender.acked <= set(bodies) else None

    wait_until("every acknowledged record at the backend after the restart", delivered,
               DELIVERY_TIMEOUT,
               diagnostics=lambda: (f"{otelspool.process.diagnostics()}\n"
                                    f"backend: {backend.stats()}\n"
                                    f"missing: {len(sender.acked - set(r['body'] for r in backend.records('logs')))}"))
    bodies = [r["body"] for r in backend.records("logs") if r["body"].startswith(sender.prefix())]
    report = delivery_report(sender.acked, bodies, sent=sent)
    assert report["lost"] == 0
