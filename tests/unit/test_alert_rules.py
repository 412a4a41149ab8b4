"""The sample Prometheus alert rules parse, and every metric they use is one the worker
exports (so a renamed metric cannot leave an alert that never fires)."""

from __future__ import annotations

import pathlib
import re

import yaml

from manila_protector.worker import metrics

RULES = pathlib.Path(__file__).resolve().parents[2] / "etc" / "prometheus" / \
    "manila-protector-alerts.yaml"
#: The suffixes Prometheus adds to a counter's or a histogram's samples.
SUFFIXES = ("", "_total", "_bucket", "_count", "_sum", "_created")


def exported_sample_names() -> set[str]:
    registry = metrics.Metrics().registry
    return {name + suffix for family in registry.collect()
            for name in (family.name,) for suffix in SUFFIXES}


def test_alert_rules_parse_and_name_only_exported_metrics():
    document = yaml.safe_load(RULES.read_text())
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    exported = exported_sample_names()

    assert {rule["alert"] for rule in rules} >= {"ManilaProtectorJobStuck",
                                                 "ManilaProtectorJobErrorRate"}
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical")
        used = set(re.findall(r"manila_protector_[a-z_]+", rule["expr"]))
        assert used <= exported, (rule["alert"], used - exported)
    assert any("manila_protector_oldest_running_job_seconds" in r["expr"] for r in rules)


def test_every_documented_metric_is_exported():
    registry = metrics.Metrics().registry
    families = {family.name for family in registry.collect()}
    # prometheus_client names a counter's family without its _total suffix.
    assert {name.removesuffix("_total") for name in metrics.METRIC_NAMES} == families
    documented = (RULES.parents[2] / "doc" / "metrics.rst").read_text()
    for name in metrics.METRIC_NAMES:
        assert name in documented, name
