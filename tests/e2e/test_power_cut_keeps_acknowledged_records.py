"""Acknowledged records survive power cuts, not only kills: the queue lives on a filesystem
that throws away every write, create, rename and unlink not yet made durable by an fsync
(`otelspool-powercutfs`; the model is the doc of crates/testkit/src/powercut/mod.rs).

`kill -9` leaves the page cache intact, so it cannot tell whether the fsyncs are in the right
places; a power cut can. `POWERCUT_CUTS=N` for a longer run (default 50);
`POWERCUT_SEED=N` replays a run.
"""

from __future__ import annotations

import os
import random
import time

from chaos import Loadgen, print_counts, wait_all_delivered
from conftest import wait_until
from powercut import PowercutFs, describe_cut, skip_unless_fuse_works

CUTS = int(os.environ.get("POWERCUT_CUTS", "50"))
JOBS = 10
RATE = 40            # records per second per job: 400/s in all
SLOT = 1.0           # seconds of load planned per cut
BACKEND_OUTAGES = max(5, CUTS // 8)
EARLY_CUTS = 0.15    # share of cuts that fall while otelspool starts (recovery, first writes)
ACK_WAIT = 20.0      # after a restart, an acknowledgement must come within this
DELIVERY_WAIT = 90.0


def powercut_seed() -> int:
    """`$POWERCUT_SEED` to replay a run, else a fresh one; always printed."""
    value = os.environ.get("POWERCUT_SEED")
    seed = int(value) if value else random.SystemRandom().randrange(1 << 32)
    print(f"\npower-cut seed: {seed} (replay with POWERCUT_SEED={seed})")
    return seed


def test_power_cuts_keep_acknowledged_records(make_backend, make_otelspool, free_port,
                                               tmp_path):
    """Scenario: 10 gRPC jobs stream logs into otelspool (file_storage with fsync on, on the
    power-cut filesystem) while the power is cut 50 times at random moments: the filesystem
    drops everything not durable and fails all I/O, otelspool is SIGKILLed at the same moment,
    then both start again on what survived. Most cuts fall under load, some while otelspool
    is still starting (recovering its queue); the backend is down across some cuts so that a
    backlog is on disk when the power goes. Then everything stays up and drains.
    Guarantees: otelspool starts, opens its queue and acknowledges again after every cut;
    every record it acknowledged reaches the backend (lost == 0)."""
    skip_unless_fuse_works()
    seed = powercut_seed()
    rng = random.Random(seed)
    backend = make_backend()
    backend.start()
    otelspool = make_otelspool(backend.grpc_port)
    fs = PowercutFs(free_port, tmp_path, otelspool.data_dir, tmp_path / "powercut-backing")
    load_seconds = CUTS * SLOT
    planned = range(1, max(2, int(CUTS * 0.6)))
    outage_cycles = set(rng.sample(planned, min(BACKEND_OUTAGES, len(planned))))
    events: list[str] = []
    cuts = cycles = early_cuts = backend_kills = cuts_during_outage = 0
    started = time.monotonic()

    def log(event: str) -> None:
        events.append(f"{time.monotonic() - started:6.1f}s {event}")

    def power_cut(when: str) -> None:
        nonlocal cuts, cuts_during_outage
        thrown = fs.cut()
        otelspool.kill9()
        fs.stop()
        cuts += 1
        cuts_during_outage += not backend.process.alive()
        log(f"power cut #{cuts} {when} (acked so far {loadgen.acked_so_far()}, backend "
            f"{'up' if backend.process.alive() else 'down'}): {describe_cut(thrown)}; "
            f"survived {fs.durable_files()}")

    try:
        fs.start()
        otelspool.start()
        loadgen = Loadgen(tmp_path, otelspool.grpc_endpoint, f"powercut{seed}", jobs=JOBS,
                          rate=RATE, duration=load_seconds, deadline=load_seconds + 60,
                          timeout=2.0).start()
        while cuts < CUTS:
            if cuts > 0:  # power up on what survived
                fs.start()
                if cuts < CUTS - 1 and rng.random() < EARLY_CUTS:
                    otelspool.process.spawn()
                    time.sleep(rng.uniform(0.0, 0.4))
                    power_cut("while otelspool was starting")
                    early_cuts += 1
                    continue
                otelspool.start()  # fails the test if the queue does not open
            cycles += 1
            before = loadgen.acked_so_far()
            if loadgen.process.alive():
                wait_until(f"an acknowledgement after power-up #{cuts} (acked {before})",
                           lambda: loadgen.acked_so_far() > before
                           or not loadgen.process.alive(),
                           ACK_WAIT, diagnostics=otelspool.process.diagnostics)
            if cycles in outage_cycles and backend.process.alive():
                backend.kill9()
                backend_kills += 1
                log("backend down")
            elif not backend.process.alive() and rng.random() < 0.5:
                backend.start()
                log("backend up")
            time.sleep(rng.uniform(0.0, 1.2))
            power_cut("under load")
        if not backend.process.alive():
            backend.start()
            log("backend up (final)")
        fs.start()
        otelspool.start()
        log("power on (final)")
        report = loadgen.wait()
        otelspool.assert_alive("the load ended")
        verdict = wait_all_delivered(
            tmp_path, loadgen, backend.record_path, DELIVERY_WAIT,
            diagnostics=lambda: f"{otelspool.process.diagnostics()}\nbackend: {backend.stats()}")
    finally:
        print("\n".join(events))
        otelspool.kill9()
        fs.stop()
    print_counts("power cuts", report, verdict, seed=seed, cuts=cuts, early_cuts=early_cuts,
                 cuts_during_outage=cuts_during_outage, backend_kills=backend_kills,
                 seconds=round(time.monotonic() - started))

    assert cuts == CUTS
    assert backend_kills >= 1 and cuts_during_outage >= 1, "no cut fell during a backend outage"
    assert verdict["acked"] > 0, "nothing was acknowledged: nothing was tested"
    assert verdict["lost"] == 0, (f"{verdict['lost']} acknowledged records lost over {cuts} power "
                                  f"cuts, e.g. {verdict['lost_examples']} (seed {seed})")
