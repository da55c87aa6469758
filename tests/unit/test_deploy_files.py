"""The deployment files: Kubernetes manifests valid against the API schemas, the Operator's
rules the same as deploy/prometheus/alerts.yml, and a Dockerfile hadolint accepts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S_VERSION = "1.30.0"  # the oldest release still supported upstream
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}  # CRDs: no schema in the Kubernetes API


def _documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc)
        for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def test_the_manifests_hold_every_resource_a_deployment_needs() -> None:
    kinds = {doc["kind"] for _, doc in _documents()}
    assert (
        kinds
        == {
            "ConfigMap",
            "Secret",
            "Job",
            "Deployment",
            "Service",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
        }
        | OPERATOR_KINDS
    )


@pytest.mark.parametrize(
    ("name", "document"), _documents(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_each_manifest_is_valid(name: str, document: dict[str, Any]) -> None:
    if document["kind"] in OPERATOR_KINDS:
        pytest.skip("a CustomResource: checked against the files it mirrors")
    kubernetes_validate.validate(document, K8S_VERSION, strict=True)


def test_the_operator_rules_are_the_alert_rules() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    (operator,) = [doc for _, doc in _documents() if doc["kind"] == "PrometheusRule"]
    assert operator["spec"] == rules


def test_hadolint_accepts_the_dockerfile() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    dockerfile = DEPLOY.parent / "Dockerfile"
    done = subprocess.run(  # noqa: S603 - a fixed tool on our own file
        [str(hadolint), str(dockerfile)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
