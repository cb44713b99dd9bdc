"""Acknowledged logs survive repeated SIGKILLs of otelspool and backend outages under load."""

from __future__ import annotations

import os
import random
import time

from chaos import Loadgen, print_counts, wait_all_delivered

# Tuned so the whole test stays well under 2.5 minutes on a 2-core CI machine.
JOBS = 20
RATE = 50            # records per second per job: 1000/s in all
LOAD_SECONDS = 55
KILLS = 22           # at least 20 SIGKILLs of otelspool
BACKEND_OUTAGES = 5
CHAOS_BUDGET = 50.0  # seconds; the kill loop never runs longer
DELIVERY_WAIT = 60.0


def chaos_seed() -> int:
    """`$CHAOS_SEED` to replay a run, else a fresh one; always printed."""
    value = os.environ.get("CHAOS_SEED")
    seed = int(value) if value else random.SystemRandom().randrange(1 << 32)
    print(f"\nchaos seed: {seed} (replay with CHAOS_SEED={seed})")
    return seed


def test_chaos_kill9_and_outages(make_backend, make_otelspool, tmp_path):
    """Scenario: 20 gRPC jobs stream logs while otelspool is SIGKILLed and restarted at random
    moments 22 times and the backend is SIGKILLed and restarted 5 times (file_storage queue,
    100–500ms retries); then both stay up.
    Guarantees: every record otelspool acknowledged reaches the backend (lost == 0), and no
    valid request is refused permanently."""
    seed = chaos_seed()
    rng = random.Random(seed)
    backend = make_backend()
    backend.start()
    otelspool = make_otelspool(backend.grpc_port)
    otelspool.start()

    loadgen = Loadgen(tmp_path, otelspool.grpc_endpoint, f"chaos{seed}", jobs=JOBS, rate=RATE,
                      duration=LOAD_SECONDS, deadline=LOAD_SECONDS + 30, timeout=2.0).start()
    outage_starts = set(rng.sample(range(1, KILLS - 2), BACKEND_OUTAGES))
    started = time.monotonic()
    kills = backend_kills = 0
    events = []
    try:
        time.sleep(2.0)  # let the jobs get going
        for i in range(KILLS):
            if time.monotonic() - started > CHAOS_BUDGET:
                break
            time.sleep(rng.uniform(0.3, 2.2))
            if i in outage_starts and backend.process.alive():
                backend.kill9()
                backend_kills += 1
                events.append(f"{time.monotonic() - started:.1f}s backend down")
            elif not backend.process.alive() and rng.random() < 0.6:
                backend.start()
                events.append(f"{time.monotonic() - started:.1f}s backend up")
            otelspool.kill9()
            kills += 1
            events.append(f"{time.monotonic() - started:.1f}s otelspool kill -9 #{kills} "
                          f"(acked so far {loadgen.acked_so_far()})")
            time.sleep(rng.uniform(0.0, 0.5))  # down for a moment: clients must retry
            otelspool.start()
        if not backend.process.alive():
            backend.start()
            events.append(f"{time.monotonic() - started:.1f}s backend up (final)")
    finally:
        print("\n".join(events))
    report = loadgen.wait()
    otelspool.assert_alive("the load ended")

    verdict = wait_all_delivered(
        tmp_path, loadgen, backend.record_path, DELIVERY_WAIT,
        diagnostics=lambda: f"{otelspool.process.diagnostics()}\nbackend: {backend.stats()}")
    print_counts("chaos kill9+outages", report, verdict, seed=seed, otelspool_kills=kills,
                 backend_kills=backend_kills, seconds=round(time.monotonic() - started))

    assert kills >= 20, f"only {kills} kills fitted in the chaos budget"
    assert backend_kills >= 3, f"only {backend_kills} backend outages happened"
    assert report["acked"] >= report["sent"] // 2, "otelspool acknowledged too little to judge"
    assert verdict["lost"] == 0, (f"{verdict['lost']} acknowledged records lost, e.g. "
                                  f"{verdict['lost_examples']} (seed {seed})")
    assert report["failed_requests"] == 0, f"valid requests refused permanently: {report['errors']}"
