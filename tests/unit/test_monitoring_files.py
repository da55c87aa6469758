"""The dashboard and the alert rules name only metrics the gateway exports, and Prometheus'
own checker accepts the scrape config, the rules and the exposition."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY, generate_latest

import gateway.metrics  # noqa: F401 - registers every metric

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "mj-gateway.json"
RULES = DEPLOY / "prometheus" / "alerts.yml"
CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
NAME = re.compile(r"\bgateway_[a-z0-9_]+")
SUFFIXES = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"], "gauge": [""]}


def _exported() -> set[str]:
    names = set()
    for family in REGISTRY.collect():
        if family.name.startswith("gateway_"):
            names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, [""])}
    return names


def _dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


def _rule_exprs() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


@pytest.mark.parametrize("source", ["dashboard", "rules"])
def test_every_metric_named_exists(source: str) -> None:
    exprs = _dashboard_exprs() if source == "dashboard" else _rule_exprs()
    named = {name for expr in exprs for name in NAME.findall(expr)}
    assert named, "no metric named at all"
    assert named <= _exported(), named - _exported()


def test_the_dashboard_has_every_section() -> None:
    rows = [p["title"] for p in json.loads(DASHBOARD.read_text())["panels"] if p["type"] == "row"]
    assert rows == [
        "Overview (RED)",
        "Per route",
        "Channels",
        "Task pipeline",
        "Billing",
        "Rate limits and webhooks",
        "Dependencies",
        "Media store",
        "Process",
    ]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian: prometheus)")
@pytest.mark.parametrize(
    ("command", "target"), [("config", CONFIG), ("rules", RULES), ("metrics", None)]
)
def test_promtool_accepts_it(command: str, target: Path | None) -> None:
    promtool = shutil.which("promtool") or "promtool"
    exposition = generate_latest(REGISTRY) if target is None else None
    done = subprocess.run(  # noqa: S603 - a fixed tool with our own files
        [promtool, "check", command, *([str(target)] if target else [])],
        input=exposition,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
