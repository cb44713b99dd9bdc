"""The long chaos campaign as a program (run it through `scripts/chaos`, which sets up the venv
and builds the binaries): the same `Campaign` as test_chaos_kill9_and_outages.py, with 100
kills, at least 10 outages and a disk-full episode by default.

Writes into --out: summary.json (every figure and the event log), summary.md (the figures for
a human), and work/ (ack logs, the backend's record file, each process's stderr; the queue
folder is copied to work/queue-after when the run failed). Exit code 0 when nothing
acknowledged was lost and no other violation was seen, 1 otherwise, 2 for a bad invocation.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pytest  # noqa: E402

from chaos_campaign import Campaign, Plan  # noqa: E402
from conftest import REPO  # noqa: E402

MIN_OUTAGES = 10


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/chaos", description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=100, help="kill -9s of otelspool (default 100)")
    p.add_argument("--outages", type=int, default=12,
                   help=f"backend outages (default 12, at least {MIN_OUTAGES})")
    p.add_argument("--seed", type=int, help="replay a run (default: a fresh seed, printed)")
    p.add_argument("--out", type=Path, help="output folder (default target/chaos/<time>-<seed>)")
    p.add_argument("--rate", type=float, default=50.0, help="records/s per loadgen job")
    p.add_argument("--grpc-jobs", type=int, default=12)
    p.add_argument("--http-jobs", type=int, default=8)
    p.add_argument("--no-disk-full", action="store_true", help="leave out the disk-full episode")
    p.add_argument("--delivery-wait", type=float, default=180.0,
                   help="seconds to wait for every acknowledged record at the end")
    args = p.parse_args(argv)
    if args.kills < 1 or args.outages < MIN_OUTAGES:
        p.error(f"--kills must be >= 1 and --outages >= {MIN_OUTAGES}")
    return args


def markdown(r: dict) -> str:
    c, k, o, d, load = r["counts"], r["kills"], r["outages"], r["disk_full"], r["load"]
    lines = [
        f"# otelspool chaos campaign, seed {r['seed']}: {r['verdict'].upper()}", "",
        f"Replay: `scripts/chaos --seed {r['seed']} --kills {r['plan']['kills']} "
        f"--outages {r['plan']['outages']}`", "",
        "| figure | value |", "|---|---|",
        f"| records sent | {c['sent']} |",
        f"| acknowledged | {c['acked']} |",
        f"| delivered (acknowledged, at least once) | {c['delivered']} |",
        f"| duplicates (ids delivered more than once / extra copies) | "
        f"{c['duplicates']} / {c['duplicate_copies']} |",
        f"| **lost** (acknowledged, never delivered) | **{c['lost']}** |",
        f"| delivered but not acknowledged (fine) | {c['unexpected']} |",
        f"| kill -9 of otelspool | {k['total']} |",
        f"| backend outages | {o['total']} |",
        f"| disk-full episode | {d.get('episode')} |",
        f"| disk-full refusals (storage_error) | {d.get('refusals', 'n/a')} |",
        f"| queue items left at the end | {r['queue_items_at_end']} |",
        f"| loadgen runs / retries / permanent failures | {load['runs']} / {load['retries']} / "
        f"{load['failed_requests']} |",
        f"| chaos / wall time | {r['chaos_seconds']} s / {r['wall_seconds']} s |", "",
        "## Kills by phase", "",
        " ".join(f"{phase}: {n};" for phase, n in sorted(k["by_phase"].items())), "",
        f"Start-up and recovery kills that landed before the health check listened: "
        f"{k['before_health_listening']} of {k['start_up_or_recovery']}; drain kills with a "
        f"backlog at the kill: {k['drain_with_backlog']} of {k['drain']}; median start-up "
        f"{k['median_start_seconds']} s.", "",
        "## Outages", "",
        " ".join(f"{kind}: {n};" for kind, n in sorted(o["by_kind"].items())),
        f"lengths (s): {o['seconds']}", "",
        "## Disk-full episode", "", "```", json.dumps(d, indent=1), "```", "",
        "## Loadgen errors (all retried)", "", "```", json.dumps(load["errors"], indent=1),
        "```", "",
        "## Violations", "",
    ]
    lines += [f"- {v.splitlines()[0]}" for v in r["violations"]] or ["none"]
    lines += ["", "The full event log is in summary.json (`events`)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    args = parse(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = (args.out or REPO / "target" / "chaos" / f"{stamp}-{seed}").resolve()
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    print(f"chaos seed: {seed} (replay with --seed {seed}); output in {out}", flush=True)
    plan = Plan(kills=args.kills, outages=args.outages, disk_full=not args.no_disk_full,
                grpc_jobs=args.grpc_jobs, http_jobs=args.http_jobs, rate=args.rate,
                delivery_wait=args.delivery_wait)
    campaign = Campaign(plan, work, seed)
    result = None
    try:
        result = campaign.run()
    except pytest.skip.Exception as e:
        print(f"cannot run: {e}", file=sys.stderr)
        return 2
    finally:
        failed = result is None or result["verdict"] != "pass"
        campaign.close(keep_queue_in=work / "queue-after" if failed else None)
    result["started"] = stamp
    result["out"] = str(out)
    (out / "summary.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "summary.md").write_text(markdown(result))
    print("\n" + markdown(result), flush=True)
    print(f"summary: {out / 'summary.md'} and {out / 'summary.json'}")
    return 0 if result["verdict"] == "pass" else 1


if __name__ == "__main__":
    os.chdir(REPO)
    sys.exit(main(sys.argv[1:]))
