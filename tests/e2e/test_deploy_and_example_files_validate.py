"""Every file in deploy/ and examples/ is checked by something: otelspool configs by the real
`otelspool validate` with the environment the deployment gives them, env files against the
variables the configs read, the compose files by docker-compose, the systemd unit by
systemd-analyze, and the rest by the test or script named for it below."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO

DEPLOY, EXAMPLES = REPO / "deploy", REPO / "examples"
SIDECAR_CONFIG = DEPLOY / "otelspool.yaml"
TELEMETRY_ENV = DEPLOY / "telemetry.env"
SYSTEMD_ENV = DEPLOY / "systemd" / "otelspool.env"
UNIT = DEPLOY / "systemd" / "otelspool.service"
COMPOSE = DEPLOY / "docker-compose.yml"
COMPOSE_TEST = DEPLOY / "compose-test" / "docker-compose.test.yml"
# The token is the one secret: never in a committed file, given by the deployment.
SECRET_ENV = {"DASH0_AUTH_TOKEN": "validate-token"}

# What checks each file that is not an otelspool config or env file.
CHECKED_ELSEWHERE = {
    "deploy/README.md": "documentation",
    "deploy/prometheus/alerts.yml": "scripts/check-alerts (promtool) and "
                                    "test_alert_rules_link_their_runbook_sections.py",
    "deploy/prometheus/alerts.test.yml": "scripts/check-alerts (promtool test rules)",
    "deploy/prometheus/prometheus.yml": "test_prometheus_scrape_config_names_the_job below",
    "deploy/grafana/otelspool.json": "test_dashboards_and_alerts_name_only_exported_metrics.py",
    "deploy/perses/otelspool.yaml": "test_dashboards_and_alerts_name_only_exported_metrics.py",
    "deploy/docker-compose.yml": "test_compose_files_are_valid_and_keep_the_plan below",
    "deploy/compose-test/docker-compose.test.yml": "the same, and scripts/compose-test",
    "deploy/compose-test/compose_test.py": "scripts/compose-test (it is the test)",
    "deploy/image/passwd": "test_image_user_files below; scripts/image",
    "deploy/image/group": "test_image_user_files below; scripts/image",
    "deploy/image/testkit.Dockerfile": "scripts/image --testkit (scripts/compose-test)",
    "deploy/systemd/otelspool.service": "test_systemd_unit_is_valid_and_runs_the_config below",
    "examples/python/otel_integration.py": "test_python_example_survives_a_sidecar_restart.py",
    "examples/python/app.py": "test_python_example_survives_a_sidecar_restart.py",
    "examples/python/requirements.txt": "test_example_requirements_match_the_tested_sdk below",
    "examples/python/README.md": "documentation",
}
OTELSPOOL_CONFIGS = ["deploy/otelspool.yaml"]
ENV_FILES = ["deploy/telemetry.env", "deploy/systemd/otelspool.env"]


def files_under(*roots: Path) -> list[str]:
    out = []
    for root in roots:
        for p in sorted(root.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc":
                out.append(str(p.relative_to(REPO)))
    return out


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines as docker-compose's env_file and systemd's EnvironmentFile read them
    (no quotes, no spaces around '=', # comments)."""
    env = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = re.fullmatch(r"([A-Z_][A-Z0-9_]*)=(\S*)", line)
        assert m, f"{path}:{n}: not KEY=value without spaces or quotes: {line!r}"
        assert m.group(1) not in env, f"{path}:{n}: {m.group(1)} set twice"
        env[m.group(1)] = m.group(2)
    return env


def config_variables(path: Path) -> tuple[set[str], set[str]]:
    """(variables read without a default, variables read with one) by a config file."""
    text = "\n".join(line for line in path.read_text().splitlines()
                     if not line.lstrip().startswith("#"))
    required, optional = set(), set()
    for name, default in re.findall(r"\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}", text):
        (optional if default else required).add(name)
    return required, optional


def validate(otelspool_bin: Path, config: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("DASH0_", "OTELSPOOL_", "OTEL_"))}
    return subprocess.run([str(otelspool_bin), "validate", f"--config={config}"],
                          env={**clean, **env}, capture_output=True, text=True, timeout=30)


def test_every_file_is_checked_by_something():
    """Scenario: every file under deploy/ and examples/ is listed.
    Guarantees: each is an otelspool config or env file validated here, or is named in
    CHECKED_ELSEWHERE with what checks it; a new file with no check fails this test."""
    known = set(CHECKED_ELSEWHERE) | set(OTELSPOOL_CONFIGS) | set(ENV_FILES)
    unchecked = [f for f in files_under(DEPLOY, EXAMPLES) if f not in known]
    assert unchecked == [], f"files no test checks: {unchecked}"
    missing = [f for f in known if not (REPO / f).exists()]
    assert missing == [], f"listed but gone: {missing}"


@pytest.mark.parametrize("env_file", ENV_FILES)
def test_sidecar_config_is_valid_with_each_deployments_environment(otelspool_bin, env_file):
    """Scenario: `otelspool validate` on deploy/otelspool.yaml with the environment of each
    deployment: compose's telemetry.env, the systemd unit's otelspool.env; plus the token.
    Guarantees: exit 0 and no warning (no variable unset, nothing ignored); every variable the
    config reads without a default is set by the env file or is the token; the env files set
    no variable that neither the config nor the app reads."""
    env = read_env_file(REPO / env_file)
    required, optional = config_variables(SIDECAR_CONFIG)
    assert required == {"DASH0_AUTH_TOKEN"}, required
    assert "DASH0_AUTH_TOKEN" not in env, f"{env_file} must not hold the token"
    unused = {k for k in env if k not in required | optional and not k.startswith("OTEL_")}
    assert unused == set(), f"{env_file} sets variables nothing reads: {unused}"
    done = validate(otelspool_bin, SIDECAR_CONFIG, {**env, **SECRET_ENV})
    print(f"\n{env_file}: {done.stdout.strip()}")
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", f"warnings: {done.stderr}"
    assert "valid (1 receivers, 2 processors, 1 exporters, 2 extensions, 3 pipelines)" in done.stdout


def test_sidecar_config_without_the_token_says_so(otelspool_bin):
    """Scenario: validate deploy/otelspool.yaml with telemetry.env but no DASH0_AUTH_TOKEN.
    Guarantees: the warning names the variable (a deployment that forgot it is visible)."""
    done = validate(otelspool_bin, SIDECAR_CONFIG, read_env_file(TELEMETRY_ENV))
    assert "environment variable DASH0_AUTH_TOKEN is not set" in done.stderr, done.stderr


def test_telemetry_env_points_the_app_at_the_sidecar():
    """Scenario: deploy/telemetry.env read as the app reads it, through the example's own
    endpoint logic (examples/python/otel_integration.py).
    Guarantees: the app exports OTLP/gRPC in plaintext to otel-collector:4317, and the per-job
    flush goes to the sidecar's health port on the same host."""
    env = read_env_file(TELEMETRY_ENV)
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4317"
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
    sys.path.insert(0, str(EXAMPLES / "python"))
    try:
        import otel_integration
    finally:
        sys.path.pop(0)
    endpoint = otel_integration.resolve_endpoint(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert (endpoint.host, endpoint.port, endpoint.insecure) == ("otel-collector", 4317, True)
    assert otel_integration.resolve_endpoint("ingress.eu-west-1.aws.dash0.com:4317").insecure is False
    assert otel_integration.resolve_endpoint("https://otel.example.com:4317").insecure is False
    assert otel_integration.resolve_endpoint("127.0.0.1:4317").insecure is True
    os.environ.pop("OTELSPOOL_HEALTH_ENDPOINT", None)
    assert otel_integration.health_endpoint(endpoint) == "http://otel-collector:13133"


def compose_config(files: list[Path], env: dict[str, str]) -> dict:
    cmd = ["docker-compose"] if shutil.which("docker-compose") else ["docker", "compose"]
    args = [a for f in files for a in ("-f", str(f))]
    done = subprocess.run([*cmd, *args, "config"], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def ports(svc: dict) -> list[tuple[str, str, int]]:
    """(host ip, published port or "", container port) of each port, from the short syntax
    (docker-compose v1 prints it) or the long one (compose v2)."""
    out = []
    for p in svc.get("ports", []):
        if isinstance(p, dict):
            out.append((p.get("host_ip", ""), str(p.get("published") or ""), int(p["target"])))
        else:
            spec = p.split("/")[0]
            ip, published, target = spec.rsplit(":", 2) if spec.count(":") >= 2 else ("", *spec.split(":"))
            out.append((ip, published, int(target)))
    return out


def volumes(svc: dict) -> dict[str, str]:
    """Container path -> source (a named volume or a host path), from either syntax."""
    out = {}
    for v in svc.get("volumes", []):
        if isinstance(v, dict):
            out[v["target"]] = v["source"]
        else:
            source, target = v.split(":")[:2]
            out[target] = source
    return out


@pytest.mark.skipif(not (shutil.which("docker-compose") or shutil.which("docker")),
                    reason="docker-compose is not installed")
def test_compose_files_are_valid_and_keep_the_plan():
    """Scenario: `docker-compose config` on deploy/docker-compose.yml alone and with the
    compose-test override.
    Guarantees: both are valid compose files; the sidecar service is named otel-collector, with
    its config mounted at the image's path, the named queue volume at /var/lib/otelspool, the
    `otelspool healthcheck` health check, `restart: unless-stopped`, a memory limit above the
    config's memory_limiter, the token only in its own environment, every port published on
    127.0.0.1 only; the app reads telemetry.env; the override keeps every host port on
    127.0.0.1."""
    c = compose_config([COMPOSE], SECRET_ENV)
    s = c["services"]["otel-collector"]
    assert s["restart"] == "unless-stopped"
    assert s["healthcheck"]["test"] == ["CMD", "/otelspool", "healthcheck"]
    mounts = volumes(s)
    assert mounts["/var/lib/otelspool"] == "otelspool-queue"
    assert Path(mounts["/etc/otelspool/config.yaml"]) == SIDECAR_CONFIG
    assert "otelspool-queue" in c["volumes"]
    limit = s.get("mem_limit")
    limit_bytes = int(limit) if str(limit).isdigit() else int(str(limit).rstrip("m")) << 20
    cfg = yaml.safe_load(SIDECAR_CONFIG.read_text())
    assert limit_bytes > cfg["processors"]["memory_limiter"]["limit_mib"] << 20
    assert s["environment"]["DASH0_AUTH_TOKEN"] == "validate-token"
    for ip, _, target in ports(s):
        assert ip == "127.0.0.1", (ip, target)
    assert {target for _, _, target in ports(s)} == {4317, 4318, 13133, 8888}
    app = c["services"]["app"]
    assert app["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4317"
    assert "DASH0_AUTH_TOKEN" not in app["environment"], "the app must not get the token"

    test_env = {**SECRET_ENV, "COMPOSE_TEST_WORK": "/tmp",
                **{k: "127.0.0.1:" for k in ("OTELSPOOL_PUBLISH_ADDR",
                                             "OTELSPOOL_PUBLISH_HTTP_ADDR",
                                             "OTELSPOOL_PUBLISH_HEALTH_ADDR",
                                             "OTELSPOOL_PUBLISH_METRICS_ADDR")}}
    t = compose_config([COMPOSE, COMPOSE_TEST], test_env)
    for name, svc in t["services"].items():
        for ip, published, target in ports(svc):
            assert ip == "127.0.0.1", (name, target)
            assert published == "", f"{name}:{target}: the test lets Docker pick host ports"
    assert t["services"]["otel-collector"]["environment"]["DASH0_ENDPOINT"] == "http://testbackend:4317"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_systemd_unit_is_valid_and_runs_the_config(otelspool_bin, tmp_path):
    """Scenario: deploy/systemd/otelspool.service with its binary path pointed at the built
    binary, checked by `systemd-analyze verify`; its config and env files validated.
    Guarantees: the unit is valid; it validates before it starts; its state directory is
    the config's queue folder's parent; it sets the hardening options; the config is valid
    with the unit's environment file and listens on loopback only."""
    text = UNIT.read_text()
    keys: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            k, _, v = line.partition("=")
            keys.setdefault(k, []).append(v)
    assert keys["ExecStart"] == ["/usr/local/bin/otelspool --config=/etc/otelspool/config.yaml"]
    assert keys["ExecStartPre"] == [
        "/usr/local/bin/otelspool validate --config=/etc/otelspool/config.yaml"]
    cfg = yaml.safe_load(SIDECAR_CONFIG.read_text())
    queue_dir = cfg["extensions"]["file_storage/queue"]["directory"]
    assert Path(queue_dir).parent == Path("/var/lib") / keys["StateDirectory"][0]
    for option in ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp",
                   "RestrictAddressFamilies", "SystemCallFilter", "CapabilityBoundingSet",
                   "MemoryDenyWriteExecute", "DynamicUser", "MemoryMax"):
        assert option in keys, f"{option} missing"
    assert keys["EnvironmentFile"] == ["/etc/otelspool/otelspool.env",
                                       "/etc/otelspool/secrets.env"]

    unit = tmp_path / "otelspool.service"
    unit.write_text(text.replace("/usr/local/bin/otelspool", str(otelspool_bin.resolve())))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "otelspool.service" not in done.stderr, done.stderr

    env = read_env_file(SYSTEMD_ENV)
    assert env["OTELSPOOL_LISTEN_HOST"] == "127.0.0.1", "no docker: listen on loopback"
    done = validate(otelspool_bin, SIDECAR_CONFIG, {**env, **SECRET_ENV})
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_image_user_files():
    """Scenario: the passwd and group files the image is assembled with.
    Guarantees: the otelspool user and group are 10001 (the Dockerfile's USER) and not root."""
    passwd = {line.split(":")[0]: line.split(":") for line in
              (DEPLOY / "image" / "passwd").read_text().splitlines()}
    group = {line.split(":")[0]: line.split(":") for line in
             (DEPLOY / "image" / "group").read_text().splitlines()}
    assert passwd["otelspool"][2:4] == ["10001", "10001"]
    assert group["otelspool"][2] == "10001"
    assert "USER 10001:10001" in (REPO / "Dockerfile").read_text()


def test_example_requirements_match_the_tested_sdk():
    """Scenario: examples/python/requirements.txt against tests/e2e/requirements.txt.
    Guarantees: the example pins the same OpenTelemetry versions the tests run it with."""
    def pins(path: Path) -> dict[str, str]:
        out = {}
        for line in path.read_text().splitlines():
            line = line.split("#")[0].strip()
            if "==" in line:
                name, version = line.split("==")
                out[name.strip()] = version.strip()
        return out

    example, tested = pins(EXAMPLES / "python" / "requirements.txt"), pins(
        REPO / "tests" / "e2e" / "requirements.txt")
    assert example, "the example pins its packages"
    for name, version in example.items():
        assert tested.get(name) == version, f"{name}=={version} vs tests' {tested.get(name)}"


def test_prometheus_scrape_config_names_the_job():
    """Scenario: deploy/prometheus/prometheus.yml parsed as YAML.
    Guarantees: it scrapes the job `otelspool` that the alerts and dashboards select."""
    jobs = [j["job_name"] for j in yaml.safe_load(
        (DEPLOY / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]]
    assert "otelspool" in jobs
