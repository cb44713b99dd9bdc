"""Acknowledged OTLP/HTTP logs survive a backend link that blackholes, crawls and resets."""

from __future__ import annotations

import random
import time

from chaos import FaultProxy, Loadgen, chaos_seed, print_counts, wait_all_delivered

JOBS = 20
RATE = 50
LOAD_SECONDS = 35
FLAPS = 12
DELIVERY_WAIT = 60.0
FAULTS = ["blackhole", "slow:200", "reset", "cut"]


def test_chaos_http_during_backend_flaps(make_backend, make_otelspool, free_port, tmp_path):
    """Scenario: 20 jobs send OTLP/HTTP to otelspool, whose exporter reaches the backend through
    the fault proxy; the proxy flaps 12 times between a fault (blackhole, slow:200, reset, cut,
    each at least twice) and pass, then stays in pass.
    Guarantees: otelspool keeps acknowledging, every acknowledged record reaches the backend
    (lost == 0), and no valid request is refused permanently."""
    seed = chaos_seed()
    rng = random.Random(seed)
    backend = make_backend()
    backend.start()
    proxy = FaultProxy(free_port, tmp_path, backend.grpc_port).start()
    otelspool = make_otelspool(proxy.port)
    otelspool.start()

    loadgen = Loadgen(tmp_path, f"127.0.0.1:{otelspool.http_port}", f"flaps{seed}",
                      protocol="http", jobs=JOBS, rate=RATE, duration=LOAD_SECONDS,
                      deadline=LOAD_SECONDS + 30, timeout=2.0).start()
    faults = FAULTS * (FLAPS // len(FAULTS))
    rng.shuffle(faults)
    started = time.monotonic()
    events = []
    try:
        time.sleep(1.5)
        for fault in faults:
            proxy.set_mode(fault)
            events.append(f"{time.monotonic() - started:.1f}s {fault} "
                          f"(acked so far {loadgen.acked_so_far()})")
            time.sleep(rng.uniform(0.8, 2.0))
            proxy.set_mode("pass")
            events.append(f"{time.monotonic() - started:.1f}s pass")
            time.sleep(rng.uniform(0.3, 1.0))
    finally:
        proxy.set_mode("pass")
        print("\n".join(events))
    report = loadgen.wait()
    otelspool.assert_alive("the proxy flapped")

    verdict = wait_all_delivered(
        tmp_path, loadgen, backend.record_path, DELIVERY_WAIT,
        diagnostics=lambda: (f"{otelspool.process.diagnostics()}\nbackend: {backend.stats()}\n"
                             f"proxy: {proxy.stats()}\n{proxy.process.diagnostics()}"))
    stats = proxy.stats()
    print_counts("chaos http flaps", report, verdict, seed=seed, flaps=len(faults),
                 proxy_connections=stats["connections"], proxy_killed=stats["killed"],
                 proxy_refused=stats["refused"], seconds=round(time.monotonic() - started))
    proxy.stop()

    assert stats["killed"] + stats["refused"] > 0, "the proxy never broke a connection"
    assert report["acked"] >= report["sent"] * 9 // 10, \
        "otelspool stopped acknowledging while its backend link flapped"
    assert verdict["lost"] == 0, (f"{verdict['lost']} acknowledged records lost, e.g. "
                                  f"{verdict['lost_examples']} (seed {seed})")
    assert report["failed_requests"] == 0, f"valid requests refused permanently: {report['errors']}"
