"""The chaos campaign: otelspool SIGKILLed at random points under gRPC and HTTP load, backend
outages, and a disk-full episode, with exact accounting by `otelspool-check`.

One code path, two sizes: `test_chaos_kill9_and_outages.py` runs a 22-kill `Plan` in CI,
`scripts/chaos` (`chaos_run.py`) a 100-kill one. The seed fixes the schedule (which steps, in
which order, every delay); the machine's timing still varies from run to run.

A kill is one of these phases (the schedule places each where it belongs; the event log records
what was observed at the kill: whether the health check listened yet, the backlog):
- steady: otelspool up, backend up;            - outage: during a backend outage;
- start-up: spawned and killed soon after (mostly before its health check listens);
- recovery: the same, right after a kill that left a backlog on disk;
- drain: just after an outage ended, while the backlog drains;
- disk-full: while the queue's filesystem is full.
An outage is the backend SIGKILLed (restarted at the end), or the fault proxy between otelspool
and the backend in `blackhole` or `reset` mode. The disk-full episode puts the backend in an
outage, shrinks the queue's tmpfs to just above its use, waits for otelspool to refuse and
report it, kills and restarts otelspool on the full disk, then gives the space back and waits
for it to accept again.
"""

from __future__ import annotations

import random
import shutil
import statistics
from collections import Counter
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest
import requests

from chaos import FaultProxy, LoadWaves, TmpfsDisk, wait_all_delivered
from conftest import START_TIMEOUT, Otelspool, Ports, TestBackend, binary, wait_until
from chaos_episodes import DiskFullEpisode, Observer

PROXY_KINDS = ("blackhole", "reset")


@dataclass
class Plan:
    """The size and mix of a campaign."""
    kills: int = 100
    outages: int = 12
    outage_kinds: tuple[str, ...] = ("backend-kill", "blackhole", "reset")
    disk_full: bool = True
    grpc_jobs: int = 12
    http_jobs: int = 8
    rate: float = 50.0           # records per second per job
    wave_seconds: float = 60.0   # length of one loadgen run
    budget_seconds: float = 3600.0  # no new step starts after this
    delivery_wait: float = 180.0


def plan_steps(rng: random.Random, plan: Plan) -> list[tuple[str, str]]:
    """The schedule: ("kill", phase), ("outage-begin", kind), ("outage-end", kind),
    ("disk-full", "")."""
    kinds = [plan.outage_kinds[i % len(plan.outage_kinds)] for i in range(plan.outages)]
    rng.shuffle(kinds)
    blocks = []
    for kind in kinds:
        during = rng.choices([0, 1, 2], weights=[1, 2, 1])[0]
        block = [("outage-begin", kind)] + [("kill", "outage")] * during
        block += [("outage-end", kind), ("kill", "drain")]
        if rng.random() < 0.5:
            block.append(("kill", "recovery"))
        blocks.append(block)
    tied = lambda: sum(s[0] == "kill" for b in blocks for s in b)  # noqa: E731
    # Outage-tied kills take at most about half the kills; trim the optional ones first.
    while tied() > max(plan.outages, plan.kills // 2):
        block = rng.choice([b for b in blocks if sum(s[0] == "kill" for s in b) > 1])
        block.remove(next(s for s in reversed(block) if s[1] in ("recovery", "outage")))
    free = plan.kills - tied() - (1 if plan.disk_full else 0)
    singles: list[list[tuple[str, str]]] = []
    while free > 0:
        single = [("kill", "steady")]
        free -= 1
        if free > 0 and rng.random() < 0.3:
            single.append(("kill", "start-up"))
            free -= 1
        singles.append(single)
    chunks = singles + blocks
    rng.shuffle(chunks)
    if plan.disk_full:
        third = len(chunks) // 3
        chunks.insert(rng.randint(third, max(third, 2 * third)), [("disk-full", "")])
    return [step for chunk in chunks for step in chunk]


class Campaign:
    """Owns every process of one campaign, runs its schedule and returns the figures."""

    def __init__(self, plan: Plan, work: Path, seed: int, tag: str = "chaos") -> None:
        self.plan, self.work, self.seed = plan, work, seed
        self.rng = random.Random(seed)
        self.steps = plan_steps(self.rng, plan)
        self.ports = Ports()
        self.events: list[dict] = []
        self.violations: list[str] = []
        self.kills: list[dict] = []
        self.outages: list[dict] = []
        self.disk_full: dict = {"episode": "not planned"}
        self.start_times: list[float] = []
        self.started = time.monotonic()
        self.tag = f"{tag}{seed}"
        self.disk: TmpfsDisk | None = None
        self.proxy: FaultProxy | None = None
        self.loads: LoadWaves | None = None
        self.backend = TestBackend(binary("OTELSPOOL_TESTBACKEND_BIN", "otelspool-testbackend"),
                                   self.ports, work)
        self.otelspool: Otelspool | None = None
        self.observer = Observer(self)

    # -- plumbing ----------------------------------------------------------------------------

    def event(self, what: str, **fields) -> None:
        entry = {"t": round(time.monotonic() - self.started, 2), "event": what, **fields}
        self.events.append(entry)
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        print(f"{entry['t']:8.2f}s {what} {extra}", flush=True)

    def violation(self, text: str) -> None:
        self.violations.append(text)
        self.event("VIOLATION", text=text.splitlines()[0])

    def setup(self) -> None:
        for name, env in (("otelspool", "OTELSPOOL_BIN"),
                          ("otelspool-testbackend", "OTELSPOOL_TESTBACKEND_BIN")):
            if not binary(env, name).exists():
                pytest.skip(f"{name} not found at {binary(env, name)}; build it with "
                            "`cargo build -p otelspool -p otelspool-testkit`")
        self.backend.start()
        upstream = self.backend.grpc_port
        if any(k in PROXY_KINDS for k in self.plan.outage_kinds):
            self.proxy = FaultProxy(self.ports, self.work, self.backend.grpc_port).start()
            upstream = self.proxy.port
        spool = Otelspool(binary("OTELSPOOL_BIN", "otelspool"), self.ports, self.work, upstream)
        if self.plan.disk_full:
            reason = TmpfsDisk.reason_unavailable()
            if reason:
                print(f"\nNOTICE: the disk-full episode is skipped: {reason}", flush=True)
                self.disk_full = {"episode": "skipped", "reason": reason}
            else:
                self.disk = TmpfsDisk(self.work / "queue-disk").mount()
                queue_dir = self.disk.path / "queue"
                text = spool.config_path.read_text().replace(
                    f'directory: "{spool.data_dir}"', f'directory: "{queue_dir}"')
                spool.config_path.write_text(text)
                spool.data_dir = queue_dir
        self.otelspool = spool
        self.start_otelspool()
        self.loads = LoadWaves(self.work, self.tag, {
            "grpc": (spool.grpc_endpoint, self.plan.grpc_jobs),
            "http": (f"127.0.0.1:{spool.http_port}", self.plan.http_jobs),
        }, rate=self.plan.rate, wave_seconds=self.plan.wave_seconds).start()

    def start_otelspool(self, healthy: bool = True) -> None:
        """Starts otelspool and waits for its health check to answer 200 (with `healthy=False`,
        to answer at all: on a full disk it may rightly say 503 at once); fails (pytest.fail)
        if it exits or does not answer in time. Polls every 5 ms to learn how long a start-up
        takes."""
        spool = self.otelspool
        spool.process.spawn()
        began = time.monotonic()

        def ready():
            if not spool.process.alive():
                pytest.fail(f"otelspool exited before its health check answered\n"
                            f"{spool.process.diagnostics()}", pytrace=False)
            return spool.healthy() if healthy else self.observer.health()[0] is not None

        wait_until(f"otelspool's health check to answer{' 200' if healthy else ''}", ready,
                   START_TIMEOUT, interval=0.005, diagnostics=spool.process.diagnostics)
        if healthy:
            self.start_times.append(time.monotonic() - began)

    def ensure_running(self) -> None:
        """Restarts otelspool if it is down (after a kill); notes it if it died on its own."""
        process = self.otelspool.process
        if process.alive():
            return
        if process.proc is not None and process.proc.returncode != -9:
            self.violation(f"otelspool exited on its own with {process.proc.returncode}\n"
                           f"{process.diagnostics()}")
        self.start_otelspool()

    def startup_estimate(self) -> float:
        recent = self.start_times[-10:]
        return statistics.median(recent) if recent else 0.5

    # -- steps ------------------------------------------------------------------------------

    def kill(self, phase: str) -> None:
        spool, rng = self.otelspool, self.rng
        seen: dict = {}
        if phase in ("start-up", "recovery") and spool.process.alive():
            phase = "steady"  # only after a kill (as scheduled) is there a start-up to hit
        if phase in ("start-up", "recovery"):
            spool.process.spawn()
            time.sleep(rng.uniform(0.0, self.startup_estimate()))
            if not spool.process.alive():
                self.violation(f"otelspool exited during start-up\n{spool.process.diagnostics()}")
                self.start_otelspool()
                return
            seen["health_listening"] = self.observer.health_listening()  # a connect
            seen["queue_bytes"] = self.observer.queue_bytes()
        else:
            self.ensure_running()
            delay = {"steady": (0.3, 2.2), "outage": (0.3, 1.5), "drain": (0.0, 0.4),
                     "disk-full": (0.2, 1.0)}[phase]
            time.sleep(rng.uniform(*delay))
            seen["queue_items"] = self.observer.queue_items()
        spool.kill9()
        self.kills.append({"phase": phase, **seen})
        self.event("kill -9 otelspool", n=len(self.kills), phase=phase, **seen,
                   acked=self.loads.acked_so_far())
        time.sleep(rng.uniform(0.0, 0.5))  # down for a moment: clients must retry

    def outage_begin(self, kind: str) -> None:
        self.ensure_running()
        if kind == "backend-kill":
            self.backend.kill9()
        else:
            self.proxy.set_mode(kind)
        self.outages.append({"kind": kind, "began": time.monotonic()})
        self.event("outage begins", kind=kind, n=len(self.outages))
        time.sleep(self.rng.uniform(1.0, 3.0))  # let a backlog build

    def outage_end(self, kind: str) -> None:
        if kind == "backend-kill":
            self.backend.start()
        else:
            self.proxy.set_mode("pass")
        outage = self.outages[-1]
        outage["seconds"] = round(time.monotonic() - outage.pop("began"), 2)
        self.event("outage ends", kind=kind, seconds=outage["seconds"])

    def run_steps(self) -> None:
        for action, arg in self.steps:
            if time.monotonic() - self.started > self.plan.budget_seconds:
                self.event("budget spent; no more steps", budget=self.plan.budget_seconds)
                break
            if action == "kill":
                self.kill(arg)
            elif action == "outage-begin":
                self.outage_begin(arg)
            elif action == "outage-end":
                self.outage_end(arg)
            elif action == "disk-full":
                if self.disk is not None:
                    self.disk_full = DiskFullEpisode(self).run()
                else:  # its kill still happens, so the campaign has the kills it promised
                    self.event("disk-full episode skipped", reason=self.disk_full.get("reason"))
                    self.kill("steady")

    # -- the whole run ----------------------------------------------------------------------

    def run(self) -> dict:
        """Sets up, runs the schedule, lets everything settle and counts. Never raises for a
        broken guarantee: the result lists violations (a failed set-up still raises)."""
        self.setup()
        aborted = None
        try:
            self.run_steps()
        except (Exception, pytest.fail.Exception) as e:  # noqa: BLE001 - reported below
            aborted = f"{type(e).__name__}: {e}"
            self.violation(f"campaign aborted: {aborted}")
        chaos_seconds = time.monotonic() - self.started
        self.settle()
        load = self.loads.stop_and_wait()
        for failure in self.loads.failures:
            self.violation(f"load generator: {failure}")
        if not self.otelspool.process.alive():
            self.violation(f"otelspool is down after the load\n"
                           f"{self.otelspool.process.diagnostics()}")
        verdict = wait_all_delivered(self.work, self.loads, self.backend.record_path,
                                     self.plan.delivery_wait, diagnostics=self.diagnostics)
        if verdict["lost"]:
            self.violation(f"{verdict['lost']} acknowledged records lost, e.g. "
                           f"{verdict['lost_examples'][:5]} (seed {self.seed})")
        if load["failed_requests"]:
            self.violation(f"valid requests refused permanently: {load['errors']}")
        end_items = self.observer.queue_items()
        return self.result(load, verdict, chaos_seconds, aborted, end_items)

    def settle(self) -> None:
        """Backend up, proxy passing, disk grown, otelspool running."""
        try:
            if self.disk is not None:
                self.disk.grow()
            if self.proxy is not None:
                self.proxy.set_mode("pass")
            if not self.backend.process.alive():
                self.backend.start()
            self.ensure_running()
        except (Exception, pytest.fail.Exception) as e:  # noqa: BLE001
            self.violation(f"could not bring everything back up: {e}")

    def diagnostics(self) -> str:
        try:
            stats = self.backend.stats()
        except requests.RequestException as e:
            stats = repr(e)
        return f"{self.otelspool.process.diagnostics()}\nbackend: {stats}"

    def result(self, load: dict, verdict: dict, chaos_seconds: float, aborted, end_items):
        by_phase = dict(Counter(k["phase"] for k in self.kills))
        by_kind = dict(Counter(o["kind"] for o in self.outages))
        early = [k for k in self.kills if k["phase"] in ("start-up", "recovery")]
        drains = [k for k in self.kills if k["phase"] == "drain"]
        return {
            "seed": self.seed, "plan": asdict(self.plan), "aborted": aborted,
            "verdict": "pass" if not self.violations else "fail",
            "violations": self.violations,
            "counts": {key: verdict[key] for key in (
                "acked", "delivered", "duplicates", "duplicate_copies", "lost",
                "lost_examples", "unexpected")} | {"sent": load["sent"]},
            "load": load,
            "kills": {"total": len(self.kills), "by_phase": by_phase,
                      "before_health_listening": sum(not k["health_listening"] for k in early),
                      "start_up_or_recovery": len(early),
                      "drain_with_backlog": sum((k["queue_items"] or 0) > 0 for k in drains),
                      "drain": len(drains),
                      "median_start_seconds": round(self.startup_estimate(), 3)},
            "outages": {"total": len(self.outages), "by_kind": by_kind,
                        "seconds": [o.get("seconds") for o in self.outages]},
            "disk_full": self.disk_full,
            "queue_items_at_end": end_items,
            "chaos_seconds": round(chaos_seconds, 1),
            "wall_seconds": round(time.monotonic() - self.started, 1),
            "events": self.events,
        }

    def close(self, keep_queue_in: Path | None = None) -> None:
        """Stops every process; copies the queue folder to `keep_queue_in` (for a post-mortem)
        before the tmpfs goes away."""
        if self.loads is not None:
            self.loads.kill()
        for process in (self.otelspool and self.otelspool.process, self.backend.process,
                        self.proxy and self.proxy.process):
            if process:
                process.kill9()
        if self.disk is not None:
            if keep_queue_in is not None and self.otelspool is not None:
                shutil.copytree(self.otelspool.data_dir, keep_queue_in, dirs_exist_ok=True)
            self.disk.unmount()
