"""Acknowledged logs survive repeated SIGKILLs of otelspool and backend outages under load.

The short version of the campaign in `chaos_campaign.py` (the long one is `scripts/chaos`)."""

from __future__ import annotations

from chaos import chaos_seed, print_counts
from chaos_campaign import Campaign, Plan

# Tuned so the whole test stays well under 2.5 minutes on a 2-core CI machine.
PLAN = Plan(
    kills=22,                # at least 20 SIGKILLs of otelspool
    outages=5,
    outage_kinds=("backend-kill",),
    disk_full=False,         # test_limits_disk_and_slow_clients.py covers a full disk
    grpc_jobs=20, http_jobs=0, rate=50,  # 1000 records/s in all
    wave_seconds=60,
    budget_seconds=50,       # no step starts after this
    delivery_wait=60,
)


def test_chaos_kill9_and_outages(tmp_path):
    """Scenario: 20 gRPC jobs stream logs while otelspool is SIGKILLed and restarted 22 times at
    random points (steady load, during start-up and recovery, during a backend outage, while
    the backlog drains) and the backend is SIGKILLed and restarted 5 times (file_storage queue,
    100-500ms retries); then everything stays up.
    Guarantees: every record otelspool acknowledged reaches the backend (lost == 0), no valid
    request is refused permanently, and otelspool never exits on its own."""
    seed = chaos_seed()
    campaign = Campaign(PLAN, tmp_path, seed)
    try:
        result = campaign.run()
    finally:
        campaign.close()
    counts, load, kills = result["counts"], result["load"], result["kills"]
    print_counts("chaos kill9+outages", load, counts, seed=seed, otelspool_kills=kills["total"],
                 kills_by_phase=kills["by_phase"], backend_kills=result["outages"]["total"],
                 seconds=result["wall_seconds"])

    assert kills["total"] >= 20, f"only {kills['total']} kills fitted in the chaos budget"
    assert result["outages"]["by_kind"].get("backend-kill", 0) >= 3, \
        f"only {result['outages']['total']} backend outages happened"
    assert load["acked"] >= load["sent"] // 2, "otelspool acknowledged too little to judge"
    assert counts["lost"] == 0, (f"{counts['lost']} acknowledged records lost, e.g. "
                                 f"{counts['lost_examples']} (seed {seed})")
    assert load["failed_requests"] == 0, f"valid requests refused permanently: {load['errors']}"
    assert result["violations"] == [], result["violations"]
