"""The alert rules (deploy/prometheus/alerts.yml), their promtool unit tests and the runbook
(docs/runbook.md) agree: every alert is routed, explained, linked to its own runbook section,
and tested both firing and not firing."""

from __future__ import annotations

import re

import yaml

import selfmetrics as sm
from conftest import REPO

ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
ALERT_TESTS = REPO / "deploy" / "prometheus" / "alerts.test.yml"
RUNBOOK = REPO / "docs" / "runbook.md"
RUNBOOK_URL = "https://example.invalid/otelspool/blob/main/docs/runbook.md#"


def rules() -> list[dict]:
    return [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]


def expand_braces(text: str) -> str:
    """`name_{a,b}` as the runbook writes a family of metrics -> `name_a name_b`."""
    return re.sub(r"(\w+)\{(\w+(?:,\w+)+)\}",
                  lambda m: " ".join(m.group(1) + part for part in m.group(2).split(",")), text)


def runbook_sections() -> dict[str, str]:
    """Level-2 sections of the runbook by their GitHub anchor, with their text (metric
    families written `name_{a,b}` expanded)."""
    sections, anchor = {}, None
    for line in RUNBOOK.read_text().splitlines():
        if line.startswith("## "):
            title = line[3:].strip()
            anchor = re.sub(r"[^a-z0-9 _-]", "", title.lower()).replace(" ", "-")
            sections[anchor] = ""
        elif anchor is not None:
            sections[anchor] += expand_braces(line) + "\n"
    return sections


def test_every_alert_has_severity_summary_description_and_its_own_runbook_section():
    """Scenario: alerts.yml and docs/runbook.md as committed.
    Guarantees: each alert has a `severity` of warning or critical, a summary and a
    description, and a `runbook_url` ending in `#<alert name in lower case>`, a section of the
    runbook that names every metric of the alert's expression and gives commands to run; every
    runbook section but Rollback and "Failures without an alert" belongs to an alert; Rollback
    exists, and the failures section covers auth rejected, disk full, corrupt queue and the
    memory limit."""
    sections = runbook_sections()
    names = []
    for rule in rules():
        name = rule["alert"]
        names.append(name)
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        annotations = rule["annotations"]
        assert annotations["summary"].strip() and annotations["description"].strip(), name
        anchor = name.lower()
        assert annotations["runbook_url"] == RUNBOOK_URL + anchor, name
        assert anchor in sections, f"docs/runbook.md has no section '## {name}'"
        text = sections[anchor]
        for metric in sm.metric_names(rule["expr"]):
            assert metric in text, f"the runbook section of {name} does not name {metric}"
        assert "```sh" in text and "**Fix:**" in text and "**Means:**" in text, name
    assert len(names) == len(set(names)), "duplicate alert names"
    assert set(sections) == {n.lower() for n in names} | {"rollback", "failures-without-an-alert"}, \
        sorted(sections)
    without_alert = sections["failures-without-an-alert"]
    for failure in ("### Auth rejected", "### Disk full", "### Corrupt queue", "### Memory limit"):
        assert failure in without_alert, f"the runbook has no '{failure}' under Failures without an alert"


def test_every_alert_is_unit_tested_firing_and_not_firing():
    """Scenario: alerts.test.yml as committed.
    Guarantees: every alert of alerts.yml has at least one promtool case where it fires and
    one where it must not (`exp_alerts: []`), and the tests load alerts.yml."""
    tests = yaml.safe_load(ALERT_TESTS.read_text())
    assert tests["rule_files"] == ["alerts.yml"]
    fires, silent = set(), set()
    for group in tests["tests"]:
        for case in group["alert_rule_test"]:
            (fires if case.get("exp_alerts") else silent).add(case["alertname"])
    names = {r["alert"] for r in rules()}
    assert names <= fires, f"never tested firing: {sorted(names - fires)}"
    assert names <= silent, f"never tested silent: {sorted(names - silent)}"
