"""The rollout plan's failure tests on real containers (scripts/compose-test runs this).

The stack is deploy/docker-compose.yml as shipped (the otel-collector service: the FROM-scratch
image, deploy/otelspool.yaml, the named queue volume, the health check, the memory limit) plus
deploy/compose-test/docker-compose.test.yml (the testkit backend in place of Dash0, the
testkit load generator as the app), on the compose project's private network. Only
127.0.0.1 ports are published, on ports Docker picks.

Tests, each with its own load generator run and ack log:
  normal   steady load, nothing goes wrong
  network  `docker network disconnect` the backend mid-load, then reconnect it
  restart  `docker-compose kill` the sidecar mid-load (SIGKILL), then start it again: the named
           volume keeps the queue
  limits   backend stopped, load flat out: the container's memory limit holds (no OOM kill, no
           restart), then the backend comes back
After each, `otelspool wait-drained` (inside the sidecar container) waits for an empty queue
and `otelspool-check` compares the load generator's ack log (ids answered OK) with the
backend's record file: acknowledged, delivered, duplicates, lost, printed exactly. A test
fails when one acknowledged record is lost, or when the health does not turn as expected.
Standard library only. Every wait has a deadline.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "deploy" / "docker-compose.yml"
OVERRIDE = REPO / "deploy" / "compose-test" / "docker-compose.test.yml"
SIDECAR, BACKEND, APP = "otel-collector", "testbackend", "app"
T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[compose-test {time.monotonic() - T0:6.1f}s] {msg}", flush=True)


class Failed(Exception):
    """A test's expectation did not hold."""


def wait_for(what: str, check, timeout: float, every: float = 0.2):
    """Polls `check` until it returns a truthy value; Failed after `timeout` seconds."""
    until = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - anything means "not yet"
            last = e
        if time.monotonic() >= until:
            raise Failed(f"timed out after {timeout:.0f}s waiting for {what}"
                         + (f" (last error: {last!r})" if last else ""))
        time.sleep(every)


def run(argv: list[str], env: dict | None = None, check: bool = True,
        timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise Failed(f"{' '.join(argv)} exited {done.returncode}\n{done.stdout}{done.stderr}")
    return done


def compose_command() -> list[str]:
    if run(["docker", "compose", "version"], check=False).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    sys.exit("compose-test: neither `docker compose` nor `docker-compose` is installed")


class Stack:
    """The compose project: commands, container ids, published ports, health."""

    def __init__(self, tag: str, work: Path, bin_dir: Path) -> None:
        self.project = f"otelspool-ct-{os.getpid()}"
        self.work = work
        self.bin_dir = bin_dir
        self.tag = tag
        self.env = {**os.environ,
                    "OTELSPOOL_TAG": tag,
                    "DASH0_AUTH_TOKEN": "compose-test-token",
                    "COMPOSE_TEST_WORK": str(work),
                    # "127.0.0.1:" + ":4317" = 127.0.0.1::4317: loopback, a port Docker picks.
                    "OTELSPOOL_PUBLISH_ADDR": "127.0.0.1:",
                    "OTELSPOOL_PUBLISH_HTTP_ADDR": "127.0.0.1:",
                    "OTELSPOOL_PUBLISH_HEALTH_ADDR": "127.0.0.1:",
                    "OTELSPOOL_PUBLISH_METRICS_ADDR": "127.0.0.1:"}
        self.base = [*compose_command(), "-p", self.project, "-f", str(BASE), "-f", str(OVERRIDE)]
        self._ports: dict[tuple[str, int], str] = {}
        self._containers: dict[str, str] = {}

    def compose(self, *args: str, check: bool = True, timeout: float = 300):
        # A (re)started container may get other host ports: ask again after any change; `up`
        # and `down` may also replace the containers.
        if args and args[0] in ("up", "start", "stop", "kill", "restart", "down"):
            self._ports.clear()
        if args and args[0] in ("up", "down"):
            self._containers.clear()
        return run([*self.base, *args], env=self.env, check=check, timeout=timeout)

    def started_at(self, service: str) -> float:
        """When the container's process started (Docker's clock), as a Unix time."""
        raw = self.inspect(service)["State"]["StartedAt"]  # 2026-11-30T20:03:01.123456789Z
        day, _, frac = raw.rstrip("Z").partition(".")
        return (datetime.datetime.fromisoformat(day).replace(tzinfo=datetime.timezone.utc)
                .timestamp() + float(f"0.{frac or 0}"))

    def container(self, service: str) -> str:
        if service not in self._containers:
            cid = run(["docker", "ps", "-aq", "--no-trunc",
                       "--filter", f"label=com.docker.compose.project={self.project}",
                       "--filter", f"label=com.docker.compose.service={service}",
                       "--filter", "label=com.docker.compose.oneoff=False"]).stdout.split()
            if len(cid) != 1:
                raise Failed(f"{len(cid)} containers for {service}, expected 1")
            self._containers[service] = cid[0]
        return self._containers[service]

    def inspect(self, service: str) -> dict:
        return json.loads(run(["docker", "inspect", self.container(service)]).stdout)[0]

    def health(self) -> str:
        return self.inspect(SIDECAR)["State"].get("Health", {}).get("Status", "none")

    def port(self, service: str, port: int) -> str:
        if (service, port) not in self._ports:
            # docker's own CLI: compose's `port` takes seconds, which would blur the timings.
            out = run(["docker", "port", self.container(service), f"{port}/tcp"]).stdout.strip()
            out = out.splitlines()[0] if out else ""
            host, _, p = out.rpartition(":")
            if host != "127.0.0.1" or not p:
                raise Failed(f"{service}:{port} is published on {out!r}, not on 127.0.0.1 only")
            self._ports[(service, port)] = f"127.0.0.1:{p}"
        return self._ports[(service, port)]

    def get(self, service: str, port: int, path: str) -> tuple[int, str]:
        url = f"http://{self.port(service, port)}{path}"
        try:
            with urllib.request.urlopen(url, timeout=3) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def readyz(self) -> int:
        try:
            return self.get(SIDECAR, 13133, "/readyz")[0]
        except (OSError, Failed):
            self._containers.pop(SIDECAR, None)  # maybe not created yet
            return 0

    def backend_stats(self) -> dict:
        return json.loads(self.get(BACKEND, 7000, "/stats")[1])

    def network(self) -> str:
        nets = self.inspect(BACKEND)["NetworkSettings"]["Networks"]
        if len(nets) != 1:
            raise Failed(f"the backend is on {sorted(nets)}, expected one network")
        return next(iter(nets))

    def start_load(self, name: str, *args: str) -> str:
        """Starts the load generator (the app service) in the background: its container id."""
        cid = self.compose("run", "-d", "--no-deps", "--name", f"{self.project}-{name}", APP,
                           "--endpoint", f"{SIDECAR}:4317", "--run-id", name,
                           "--ack-log", f"/work/{name}.acks",
                           "--report", f"/work/{name}-loadgen.json",
                           "--deadline", "240s", *args).stdout.strip().splitlines()[-1]
        log(f"{name}: load generator started: {' '.join(args)}")
        return cid

    def acked(self, name: str) -> int:
        try:
            with open(self.work / f"{name}.acks") as f:
                return sum(1 for _ in f)
        except FileNotFoundError:
            return 0

    def wait_load(self, name: str, cid: str) -> None:
        code = int(run(["docker", "wait", cid], timeout=300).stdout.strip())
        out = run(["docker", "logs", cid], check=False).stdout.strip().splitlines()
        run(["docker", "rm", "-f", cid], check=False)
        if code != 0:
            raise Failed(f"{name}: the load generator exited {code}: {out[-5:]}")
        log(f"{name}: load generator done: {out[-1] if out else ''}")

    def wait_drained(self, name: str, timeout: str = "180s") -> float:
        """`otelspool wait-drained` inside the sidecar container: the rollback's command."""
        t = time.monotonic()
        done = run(["docker", "exec", self.container(SIDECAR), "/otelspool", "wait-drained",
                    "--timeout", timeout, "--every", "500ms"], check=False, timeout=300)
        if done.returncode != 0:
            raise Failed(f"{name}: wait-drained exited {done.returncode}: {done.stderr.strip()}")
        return time.monotonic() - t

    def check(self, name: str) -> dict:
        """otelspool-check: the ack log against the backend's record file, exact counts."""
        done = run([str(self.bin_dir / "otelspool-check"),
                    "--ack-log", str(self.work / f"{name}.acks"),
                    "--records", str(self.work / "backend-records.jsonl"),
                    "--loadgen-report", str(self.work / f"{name}-loadgen.json")], check=False)
        try:
            result = json.loads(done.stdout)
        except ValueError:
            raise Failed(f"{name}: otelspool-check printed no JSON: {done.stdout}{done.stderr}")
        return result


def wait_health(stack: Stack, want: str, timeout: float) -> float:
    t = time.monotonic()
    wait_for(f"the sidecar's docker health to be {want}", lambda: stack.health() == want,
             timeout)
    return time.monotonic() - t


def report(name: str, counts: dict, extra: str = "") -> dict:
    line = (f"{name}: sent={counts.get('sent')} acknowledged={counts['acked']} "
            f"delivered={counts['delivered']} duplicates={counts['duplicates']} "
            f"lost={counts['lost']}")
    print(f"RESULT {line}{(' ' + extra) if extra else ''}", flush=True)
    if counts["acked"] <= 0:
        raise Failed(f"{name}: nothing was acknowledged")
    if counts["lost"] != 0 or counts["delivered"] != counts["acked"]:
        raise Failed(f"{name}: {counts['lost']} acknowledged records lost: "
                     f"{counts.get('lost_examples')}")
    return counts


def until_acked(stack: Stack, name: str, n: int) -> None:
    wait_for(f"{name}: {n} records acknowledged", lambda: stack.acked(name) >= n, 60)


# --- the tests ---------------------------------------------------------------------------


def test_normal(stack: Stack) -> dict:
    name = "normal"
    cid = stack.start_load(name, "--jobs", "20", "--rate", "50", "--duration", "10s")
    stack.wait_load(name, cid)
    drain = stack.wait_drained(name)
    if stack.health() != "healthy":
        raise Failed(f"{name}: health {stack.health()} after steady load")
    return report(name, stack.check(name), f"drained_in={drain:.1f}s")


def test_network(stack: Stack) -> dict:
    name = "network"
    net = stack.network()
    backend = stack.container(BACKEND)
    cid = stack.start_load(name, "--jobs", "20", "--rate", "50", "--duration", "25s")
    until_acked(stack, name, 500)
    run(["docker", "network", "disconnect", net, backend])
    log(f"{name}: backend disconnected from {net}")
    unhealthy = wait_health(stack, "unhealthy", 60)
    log(f"{name}: sidecar unhealthy {unhealthy:.1f}s after the disconnect")
    _, body = stack.get(SIDECAR, 13133, "/readyz")
    checks = [c["check"] for c in json.loads(body).get("failing_checks", [])]
    if "max_time_since_success" not in checks:
        raise Failed(f"{name}: /readyz fails {checks}, expected max_time_since_success")
    run(["docker", "network", "connect", "--alias", BACKEND, net, backend])
    log(f"{name}: backend reconnected")
    healthy = wait_health(stack, "healthy", 90)
    log(f"{name}: sidecar healthy {healthy:.1f}s after the reconnect")
    stack.wait_load(name, cid)
    drain = stack.wait_drained(name)
    return report(name, stack.check(name),
                  f"unhealthy_after={unhealthy:.1f}s healthy_after_reconnect={healthy:.1f}s "
                  f"drained_in={drain:.1f}s")


def test_restart(stack: Stack) -> dict:
    name = "restart"
    cid = stack.start_load(name, "--jobs", "20", "--rate", "50", "--duration", "25s")
    until_acked(stack, name, 1000)
    stack.compose("kill", SIDECAR)  # SIGKILL: no shutdown, whatever was in flight is cut
    state = stack.inspect(SIDECAR)["State"]
    if state["Running"]:
        raise Failed(f"{name}: the sidecar still runs after docker-compose kill")
    acked_at_kill = stack.acked(name)
    log(f"{name}: sidecar killed (exit {state['ExitCode']}) after {acked_at_kill} acks")
    time.sleep(2)  # the app's retries meet a dead endpoint for a while
    t = time.monotonic()
    stack.compose("start", SIDECAR)
    wait_for("/readyz 200 after the restart", lambda: stack.readyz() == 200, 60, every=0.05)
    ready = time.monotonic() - t
    from_process = time.time() - stack.started_at(SIDECAR)
    healthy = wait_health(stack, "healthy", 60) + ready
    log(f"{name}: restarted; /readyz 200 {from_process:.2f}s after the process started "
        f"({ready:.2f}s after `start`), docker healthy after {healthy:.1f}s")
    stack.wait_load(name, cid)
    drain = stack.wait_drained(name)
    return report(name, stack.check(name),
                  f"acked_before_kill={acked_at_kill} ready_after_restart={from_process:.2f}s "
                  f"drained_in={drain:.1f}s")


def cgroup_file(cid: str, name: str) -> Path | None:
    for p in (Path(f"/sys/fs/cgroup/memory/docker/{cid}/{name}"),
              Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/{name}")):
        if p.exists():
            return p
    return None


class MemorySampler:
    """Samples the sidecar's RSS (its own `otelcol_process_memory_rss`) and the container's
    cgroup memory use (page cache included) every 0.25 s while the load runs."""

    def __init__(self, stack: Stack, cid: str) -> None:
        self.stack, self.usage = stack, (cgroup_file(cid, "memory.usage_in_bytes")
                                         or cgroup_file(cid, "memory.current"))
        self.rss_peak = 0.0
        self.cgroup_peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            try:
                self.rss_peak = max(self.rss_peak, metric(self.stack, "otelcol_process_memory_rss"))
                self.samples += 1
            except (OSError, Failed, ValueError):
                pass
            if self.usage is not None:
                try:
                    self.cgroup_peak = max(self.cgroup_peak, int(self.usage.read_text()))
                except (OSError, ValueError):
                    pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def test_limits(stack: Stack) -> dict:
    name = "limits"
    info = stack.inspect(SIDECAR)
    cid, started, restarts = info["Id"], info["State"]["StartedAt"], info["RestartCount"]
    limit = info["HostConfig"]["Memory"]
    if not limit:
        raise Failed(f"{name}: the sidecar has no memory limit")
    stack.compose("stop", BACKEND)
    log(f"{name}: backend stopped; flat-out load against a {limit >> 20} MiB container")
    sampler = MemorySampler(stack, cid)
    load = stack.start_load(name, "--jobs", "32", "--rate", "0", "--duration", "15s",
                            "--record-size", "1000")
    try:
        stack.wait_load(name, load)
    finally:
        sampler.stop()
    after = stack.inspect(SIDECAR)
    if after["State"]["OOMKilled"] or not after["State"]["Running"]:
        raise Failed(f"{name}: the sidecar was OOM-killed or stopped: {after['State']}")
    if after["State"]["StartedAt"] != started or after["RestartCount"] != restarts:
        raise Failed(f"{name}: the sidecar restarted during the load")
    if sampler.samples == 0:
        raise Failed(f"{name}: the sidecar's memory could not be read during the load")
    if sampler.rss_peak >= limit:
        raise Failed(f"{name}: RSS peak {sampler.rss_peak:.0f} reached the limit {limit}")
    unhealthy = wait_health(stack, "unhealthy", 60)  # records wait, nothing delivered for > 3 s
    refused = metric(stack, "otelcol_receiver_refused_log_records")
    queued = stack.acked(name)
    log(f"{name}: {queued} records acknowledged into the queue with the backend down; "
        f"RSS peak {sampler.rss_peak:.0f} B, cgroup peak {sampler.cgroup_peak} B (page cache "
        f"included) of {limit} B; {refused:.0f} records refused retryably")
    stack.compose("start", BACKEND)
    healthy = wait_health(stack, "healthy", 180)
    drain = stack.wait_drained(name, "300s")
    return report(name, stack.check(name),
                  f"rss_peak={sampler.rss_peak / 2**20:.0f}MiB "
                  f"cgroup_peak={sampler.cgroup_peak / 2**20:.0f}MiB "
                  f"limit={limit / 2**20:.0f}MiB samples={sampler.samples} "
                  f"refused_retryably={refused:.0f} unhealthy_seen_after_load={unhealthy:.1f}s "
                  f"healthy_after_backend_back={healthy:.1f}s "
                  f"drained_in={drain:.1f}s")


def metric(stack: Stack, name: str) -> float:
    _, text = stack.get(SIDECAR, 8888, "/metrics")
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def check_image(tag: str) -> None:
    """The image as the Go collector's is used: `validate` as the command, the version, and
    its settings (non-root user, entrypoint, ports, health check, queue volume)."""
    image = f"otelspool:{tag}"
    done = run(["docker", "run", "--rm", "-e", "DASH0_AUTH_TOKEN=x", image, "validate",
                "--config=/etc/otelspool/config.yaml"], check=False)
    if done.returncode != 0 or "valid (" not in done.stdout or done.stderr:
        raise Failed(f"docker run {image} validate: exit {done.returncode}: "
                     f"{done.stdout}{done.stderr}")
    version = run(["docker", "run", "--rm", image, "--version"]).stdout.strip()
    cfg = json.loads(run(["docker", "image", "inspect", image]).stdout)[0]["Config"]
    want = {"User": "10001:10001", "Entrypoint": ["/otelspool"],
            "Cmd": ["--config=/etc/otelspool/config.yaml"],
            "ExposedPorts": ["13133/tcp", "4317/tcp", "4318/tcp", "8888/tcp"],
            "Healthcheck": ["CMD", "/otelspool", "healthcheck"],
            "Volumes": ["/var/lib/otelspool"]}
    got = {"User": cfg["User"], "Entrypoint": cfg["Entrypoint"], "Cmd": cfg["Cmd"],
           "ExposedPorts": sorted(cfg["ExposedPorts"]), "Healthcheck": cfg["Healthcheck"]["Test"],
           "Volumes": sorted(cfg["Volumes"])}
    if got != want:
        raise Failed(f"image settings {got}, expected {want}")
    print(f"RESULT image: `docker run {image} validate --config=/etc/otelspool/config.yaml`: "
          f"{done.stdout.strip()}; --version: {version}; user 10001, ports 4317 4318 13133 "
          f"8888, HEALTHCHECK otelspool healthcheck, VOLUME /var/lib/otelspool", flush=True)


TESTS = {"normal": test_normal, "network": test_network, "restart": test_restart,
         "limits": test_limits}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tag", default="compose-test", help="image tag of both images")
    ap.add_argument("--bin-dir", type=Path, required=True, help="where otelspool-check is")
    ap.add_argument("--tests", default=",".join(TESTS))
    ap.add_argument("--keep", action="store_true", help="keep the stack and work dir")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="otelspool-compose-test-"))
    stack = Stack(args.tag, work, args.bin_dir.resolve())
    size = int(run(["docker", "image", "inspect", "-f", "{{.Size}}",
                    f"otelspool:{args.tag}"]).stdout)
    print(f"RESULT image otelspool:{args.tag}: {size} bytes ({size / 1e6:.1f} MB)", flush=True)
    failed: list[str] = []
    try:
        check_image(args.tag)
        stack.compose("config", "-q")
        stack.compose("up", "-d", BACKEND)
        wait_for("the test backend's control API", stack.backend_stats, 30)
        stack.compose("up", "--no-start", "--no-deps", SIDECAR)  # create, do not start yet
        t = time.monotonic()
        up = subprocess.Popen([*stack.base, "start", SIDECAR], env=stack.env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # Asked while `start` runs (compose v1 returns a while after the container started).
        wait_for("/readyz 200", lambda: stack.readyz() == 200, 60, every=0.05)
        ready_wall, ready = time.time(), time.monotonic() - t
        if up.wait(timeout=120) != 0:
            raise Failed(f"docker-compose start failed: {up.stderr.read() if up.stderr else ''}")
        healthy = wait_health(stack, "healthy", 60) + ready
        from_process = ready_wall - stack.started_at(SIDECAR)
        print(f"RESULT cold start: /readyz 200 {from_process:.2f}s after the process started "
              f"({ready:.2f}s after `start`, compose's own time included); docker "
              f"health 'healthy' after {healthy:.1f}s (checked every 1s)", flush=True)
        for name in [n.strip() for n in args.tests.split(",") if n.strip()]:
            t = time.monotonic()
            try:
                TESTS[name](stack)
                log(f"{name}: passed in {time.monotonic() - t:.0f}s")
            except Failed as e:
                failed.append(name)
                print(f"FAILED {name}: {e}", flush=True)
                logs = run(["docker", "logs", "--tail", "30", stack.container(SIDECAR)],
                           check=False)
                print(f"--- sidecar log tail:\n{logs.stdout}{logs.stderr}", flush=True)
    except Failed as e:
        failed.append("setup")
        print(f"FAILED setup: {e}", flush=True)
    finally:
        if args.keep:
            log(f"kept: project {stack.project}, work dir {work}")
        else:
            stack.compose("down", "-v", "--remove-orphans", check=False)
            shutil.rmtree(work, ignore_errors=True)
    log(f"done in {time.monotonic() - T0:.0f}s: "
        + ("all passed" if not failed else f"FAILED: {', '.join(failed)}"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
