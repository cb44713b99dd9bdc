"""A small campaign with every ingredient of `scripts/chaos`, so the long run's code stays
working in CI: gRPC and HTTP load in waves, the three kinds of outage, kills in every phase,
the disk-full episode, and the summary it writes."""

from __future__ import annotations

import json

import pytest

from chaos import TmpfsDisk, chaos_seed, print_counts
from chaos_campaign import Campaign, Plan
from chaos_run import markdown

PLAN = Plan(
    kills=10, outages=3, outage_kinds=("backend-kill", "blackhole", "reset"), disk_full=True,
    grpc_jobs=6, http_jobs=6, rate=40, wave_seconds=20, budget_seconds=60, delivery_wait=60,
)


def test_chaos_campaign_with_a_full_disk(tmp_path):
    """Scenario: 6 gRPC and 6 HTTP jobs (loadgen runs of 20 s, chained) while otelspool is
    SIGKILLed 10 times, the backend goes away 3 times (killed; fault proxy blackholing;
    resetting), and once the queue's tmpfs fills up during an outage, otelspool is SIGKILLed
    and restarted on the full disk, and the space comes back.
    Guarantees: while the disk is full otelspool refuses with a retryable answer (probes get
    200 or 503 with Retry-After; no loadgen request fails permanently) and reports it (health
    503, storage_error refusals counted), starts on the full disk, and accepts again once
    space returns; every acknowledged record is delivered (lost == 0); the summary shows the
    figures."""
    if reason := TmpfsDisk.reason_unavailable():
        pytest.skip(reason)
    seed = chaos_seed()
    campaign = Campaign(PLAN, tmp_path, seed, tag="small")
    try:
        result = campaign.run()
    finally:
        campaign.close()
    counts, load, disk = result["counts"], result["load"], result["disk_full"]
    print_counts("small chaos campaign", load, counts, seed=seed, kills=result["kills"],
                 outages=result["outages"], disk_full=json.dumps(disk))

    assert result["violations"] == [], result["violations"]
    assert result["kills"]["total"] == PLAN.kills
    assert result["outages"]["by_kind"] == {"backend-kill": 1, "blackhole": 1, "reset": 1}
    assert {run["protocol"] for run in campaign.loads.reports} == {"grpc", "http"}
    assert disk["episode"] == "done" and disk["refusals"] > 0, disk
    assert disk["health"]["status"] == 503, disk
    assert set(disk["probe_statuses"]) <= {"200", "503"}, disk
    assert disk["restarted_on_full_disk"] and disk["resumed_after_s"] is not None, disk
    assert load["failed_requests"] == 0, load["errors"]
    assert counts["acked"] > 0 and counts["lost"] == 0, counts
    summary = markdown(result)
    assert "| **lost** (acknowledged, never delivered) | **0** |" in summary, summary
    assert f"| acknowledged | {counts['acked']} |" in summary, summary
