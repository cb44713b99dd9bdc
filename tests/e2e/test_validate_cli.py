"""`otelspool validate` accepts the rollout config and names every problem in broken ones."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import CONFIGS

ROLLOUT = CONFIGS / "rollout-sidecar.yaml"
TIMEOUT = 20


def validate(otelspool_bin: Path, config: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DASH0_AUTH_TOKEN": "validate-test-token"}
    try:
        result = subprocess.run([str(otelspool_bin), "validate", f"--config={config}"],
                                capture_output=True, text=True, timeout=TIMEOUT, env=env,
                                stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`otelspool validate` did not finish within {TIMEOUT}s", pytrace=False)
    print(f"\n$ otelspool validate --config={config}\nexit={result.returncode}\n"
          f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


def broken(tmp_path: Path, name: str, old: str, new: str) -> Path:
    """A copy of the rollout config with one textual change."""
    text = ROLLOUT.read_text()
    assert old in text, f"fixture bug: {old!r} not in {ROLLOUT}"
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1))
    return path


def line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def problems(result: subprocess.CompletedProcess, path: Path) -> list[tuple[int, str, str]]:
    """(line, key path, message) of every `FILE:LINE: key.path: message` in the output."""
    pattern = re.compile(rf"^\S*{re.escape(path.name)}:(\d+): ([^:\s]+): (.+)$", re.MULTILINE)
    out = result.stdout + result.stderr
    return [(int(m[1]), m[2], m[3]) for m in pattern.finditer(out)]


def test_accepts_rollout_sidecar_config(otelspool_bin):
    """Scenario: validate the rollout plan's sidecar config.
    Guarantees: exit 0 with a summary on stdout or stderr."""
    result = validate(otelspool_bin, ROLLOUT)
    assert result.returncode == 0
    assert (result.stdout + result.stderr).strip(), "validate printed no summary"


def test_rejects_unknown_key_with_its_line(otelspool_bin, tmp_path):
    """Scenario: a misspelled key under processors.memory_limiter.
    Guarantees: non-zero exit; the problem names the file, the key's line and its path."""
    path = broken(tmp_path, "unknown-key.yaml", "spike_limit_mib: 100", "spike_limit_mb: 100")
    result = validate(otelspool_bin, path)
    assert result.returncode != 0
    found = problems(result, path)
    expected_line = line_of(path, "spike_limit_mb")
    assert any(line == expected_line and "spike_limit_mb" in key for line, key, _ in found), (
        f"expected a problem at {path.name}:{expected_line} naming spike_limit_mb; got {found}")


def test_rejects_unknown_component_type(otelspool_bin, tmp_path):
    """Scenario: a processor of a type otelspool does not have, used in a pipeline.
    Guarantees: non-zero exit; the problem names the type at its line."""
    path = broken(tmp_path, "unknown-type.yaml", "  batch: {}\n", "  batch: {}\n  frobnicate: {}\n")
    path.write_text(path.read_text().replace("[memory_limiter, batch]",
                                             "[memory_limiter, batch, frobnicate]", 1))
    result = validate(otelspool_bin, path)
    assert result.returncode != 0
    found = problems(result, path)
    assert any("frobnicate" in key or "frobnicate" in msg for _, key, msg in found), found
    assert any(line == line_of(path, "frobnicate: {}") for line, key, msg in found
               if "frobnicate" in key + msg), found


def test_rejects_pipeline_with_undefined_exporter(otelspool_bin, tmp_path):
    """Scenario: the logs pipeline references `otlp/missing`, which is not defined.
    Guarantees: non-zero exit; the problem names the pipeline key and the missing exporter."""
    text = ROLLOUT.read_text()
    logs_at = text.index("    logs:")
    path = tmp_path / "undefined-exporter.yaml"
    path.write_text(text[:logs_at] + text[logs_at:].replace("[otlp/dash0]", "[otlp/missing]", 1))
    result = validate(otelspool_bin, path)
    assert result.returncode != 0
    found = problems(result, path)
    assert any("otlp/missing" in msg or "otlp/missing" in key for _, key, msg in found), found
    assert any(key.startswith("service.pipelines.logs") for _, key, _ in found), found


def test_lists_every_problem(otelspool_bin, tmp_path):
    """Scenario: two independent problems in one file.
    Guarantees: both are reported, not only the first."""
    path = broken(tmp_path, "two-problems.yaml", "spike_limit_mib: 100", "spike_limit_mb: 100")
    text = path.read_text()
    logs_at = text.index("    logs:")
    path.write_text(text[:logs_at] + text[logs_at:].replace("[otlp/dash0]", "[otlp/missing]", 1))
    result = validate(otelspool_bin, path)
    assert result.returncode != 0
    found = problems(result, path)
    assert len(found) >= 2, f"expected 2 problems, got {found}"
