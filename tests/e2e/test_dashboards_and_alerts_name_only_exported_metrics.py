"""The Grafana dashboard (deploy/grafana/otelspool.json), the Perses dashboard
(deploy/perses/otelspool.yaml) and the alert rules (deploy/prometheus/alerts.yml) read only
metrics that a running otelspool exports: every expression is parsed with a PromQL parser and
each metric it names is looked up in a real scrape."""

from __future__ import annotations

import json
import re

import yaml

import selfmetrics as sm
from conftest import REPO

GRAFANA = REPO / "deploy" / "grafana" / "otelspool.json"
PERSES = REPO / "deploy" / "perses" / "otelspool.yaml"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
ROWS = ["Delivery", "Queue", "Latency", "Resources", "Errors"]

# Prometheus's own series, not otelspool's.
PROMETHEUS_SERIES = {"up"}
LABEL_VALUES = re.compile(r"^label_values\((.+),\s*(\w+)\)$")


def grafana_panels(dashboard: dict) -> list[dict]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # collapsed rows keep their panels inside
    return out


def grafana_expressions(dashboard: dict) -> dict[str, str]:
    """Every PromQL expression of the dashboard, keyed by where it is."""
    exprs = {}
    for panel in grafana_panels(dashboard):
        for target in panel.get("targets", []):
            exprs[f"grafana panel {panel['title']!r} {target['refId']}"] = target["expr"]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            match = LABEL_VALUES.match(var["definition"])
            assert match, f"variable {var['name']}: unexpected query {var['definition']}"
            exprs[f"grafana variable {var['name']}"] = match.group(1)
    return exprs


def perses_expressions(dashboard: dict) -> dict[str, str]:
    exprs = {}
    for key, panel in dashboard["spec"]["panels"].items():
        for i, query in enumerate(panel["spec"]["queries"]):
            exprs[f"perses panel {key} #{i}"] = query["spec"]["plugin"]["spec"]["query"]
    for var in dashboard["spec"]["variables"]:
        plugin = var["spec"].get("plugin", {})
        for i, matcher in enumerate(plugin.get("spec", {}).get("matchers", [])):
            exprs[f"perses variable {var['spec']['name']} #{i}"] = matcher
    return exprs


def alert_expressions() -> dict[str, str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {f"alert {r['alert']}": r["expr"] for g in groups for r in g["rules"]}


def test_every_expression_names_only_exported_metrics(make_backend, make_otelspool):
    """Scenario: the known scenario of selfmetrics.py (persistent queues, a pipeline per signal,
    a memory limiter, refusals, retries, partial success, a malformed request) makes every
    metric of otelspool appear; /metrics is scraped and parsed.
    Guarantees: every expression of the Grafana dashboard (panels and variables), the Perses
    dashboard and the alert rules parses as PromQL, and every metric it names (histogram
    series included) is in the scrape, or is Prometheus's `up`."""
    scenario = sm.run_known_scenario(make_backend, make_otelspool)
    exported = sm.exported_names(scenario.families)
    exprs = {**grafana_expressions(json.loads(GRAFANA.read_text())),
             **perses_expressions(yaml.safe_load(PERSES.read_text())),
             **alert_expressions()}
    assert len(exprs) > 60, len(exprs)

    unknown, used = {}, set()
    for where, expr in exprs.items():
        names = sm.metric_names(expr)
        used |= names
        missing = names - exported - PROMETHEUS_SERIES
        if missing:
            unknown[where] = sorted(missing)
    print(f"\nexpressions: {len(exprs)}; metrics used: {len(used)}"
          f"\nexported but on no panel or alert: {sorted(exported - used)}")
    assert not unknown, json.dumps(unknown, indent=1)


def test_grafana_dashboard_is_fleet_wide_with_instance_drill_down():
    """Scenario: the Grafana dashboard as committed.
    Guarantees: schema version 39 or later; a `datasource` variable (Prometheus) that every
    panel and query uses; an `instance` variable (multi-value, All by default: fleet-wide)
    that every metric selector filters on, with `job="$job"`; one row per concern: delivery,
    queue, latency, resources, errors, each with panels; panels do not overlap."""
    d = json.loads(GRAFANA.read_text())
    assert 39 <= d["schemaVersion"] <= 41
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    instance = variables["instance"]
    assert instance["multi"] and instance["includeAll"] and instance["allValue"] == ".*"
    assert instance["current"]["value"] == ["$__all"]

    panels = grafana_panels(d)
    rows = [p["title"] for p in panels if p["type"] == "row"]
    assert rows == ROWS
    row_of, current = {}, None
    for p in panels:
        if p["type"] == "row":
            current = p["title"]
        else:
            row_of.setdefault(current, []).append(p["title"])
    assert all(row_of.get(r) for r in ROWS), row_of

    datasource = {"type": "prometheus", "uid": "${datasource}"}
    cells = set()
    for p in panels:
        g = p["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"panel {p['title']!r} overlaps another"
                cells.add((x, y))
        if p["type"] == "row":
            continue
        assert p["datasource"] == datasource, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"] == datasource, p["title"]
            for name, matchers in sm.selectors(t["expr"]):
                assert matchers.get("instance") == ("MatchOp.Re", "$instance"), (p["title"], name)
                assert matchers.get("job") == ("MatchOp.Equal", "$job"), (p["title"], name)


def test_perses_dashboard_has_the_same_rows_and_variables():
    """Scenario: the Perses dashboard as committed.
    Guarantees: a Dashboard with the same five rows (grid layouts), every layout item pointing
    at a panel that exists, every panel placed once, and the `instance` variable (multi-value,
    All by default) that every metric selector filters on."""
    d = yaml.safe_load(PERSES.read_text())
    assert d["kind"] == "Dashboard"
    spec = d["spec"]
    assert [layout["spec"]["display"]["title"] for layout in spec["layouts"]] == ROWS
    refs = [item["content"]["$ref"] for layout in spec["layouts"]
            for item in layout["spec"]["items"]]
    assert sorted(refs) == sorted(f"#/spec/panels/{key}" for key in spec["panels"])
    instance = next(v["spec"] for v in spec["variables"] if v["spec"]["name"] == "instance")
    assert instance["allowMultiple"] and instance["allowAllValue"]
    for key, panel in spec["panels"].items():
        for query in panel["spec"]["queries"]:
            for name, matchers in sm.selectors(query["spec"]["plugin"]["spec"]["query"]):
                assert matchers.get("instance") == ("MatchOp.Re", "$instance"), (key, name)
