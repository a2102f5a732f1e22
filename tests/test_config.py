"""The configuration file: valid files load, invalid ones name the file, key and problem;
access rules follow docs/configuration.md."""

from __future__ import annotations

import pytest

from bot.config import ConfigError, authorize, load_config

GOOD = """
cache_ttl_seconds: 120
clusters:
  prod:
    subscription: 00000000-0000-0000-0000-000000000000
    resource_group: rg-prod
    name: prod-aks
    kubernetes: {aad: true}
    operator_networks: [198.51.100.0/24, 203.0.113.7]
    allow:
      channels: [C0PRODOPS]
      usergroups: [S0ONCALL]
  lab:
    snapshot: ./snaps/lab
digests:
  - name: morning
    channel: C0PRODOPS
    cron: "0 8 * * 1-5"
    timezone: Europe/Lisbon
    clusters: [prod, lab]
    min_severity: WARNING
"""


def write(tmp_path, text):
    path = tmp_path / "aksdiag.yaml"
    path.write_text(text)
    return path


def test_a_valid_file_loads_with_relative_paths_resolved(tmp_path):
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.cache_ttl_seconds == 120
    assert cfg.clusters["prod"].kubernetes.aad
    lab = cfg.clusters["lab"].snapshot
    assert lab is not None and cfg.resolve(lab) == tmp_path / "snaps" / "lab"
    morning = cfg.digest("morning")
    assert morning is not None and morning.min_severity.value == "warning"


def test_config_from_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("AKSDIAG_CONFIG", str(write(tmp_path, GOOD)))
    assert "prod" in load_config().clusters


@pytest.mark.parametrize(
    "text,expected",
    [
        (GOOD.replace("203.0.113.7", "203.0.113.999"), "clusters.prod.operator_networks: item 1"),
        (
            GOOD.replace("Europe/Lisbon", "Europe/Atlantis"),
            "digests[0].timezone: unknown time zone",
        ),
        (GOOD.replace('"0 8 * * 1-5"', '"0 8 * *"'), "not a 5-field crontab"),
        (GOOD.replace("[prod, lab]", "[prod, labb]"), "unknown cluster 'labb'"),
        (
            GOOD.replace("kubernetes: {aad: true}", "kubernetes: {aad: true, in_cluster: true}"),
            "choose one way",
        ),
        (
            GOOD.replace("cache_ttl_seconds: 120", "cache_ttl_secs: 120"),
            "cache_ttl_secs: unknown key",
        ),
        ("path: /etc/elsewhere\nclusters: {}\n", "path: unknown key"),
        (
            GOOD.replace('"0 8 * * 1-5"', '"0 25 * * 1-9"'),
            "digests[0]: (morning) cron '0 25 * * 1-9'",
        ),
        (GOOD.replace('"0 8 * * 1-5"', '"0 25 * * 1-5"'), "higher than the maximum value (23)"),
        (
            GOOD.replace(
                "kubernetes: {aad: true}", "kubernetes: {aad: true}\n    probe_pods: true"
            ),
            "clusters.prod: `probe_pods` is not a setting",
        ),
        ("clusters: [a, b]", "clusters: Input should be a valid dictionary"),
        ("clusters:\n  x:\n    operator_networks: []\n", "clusters.x: a cluster needs"),
        ("clusters: {a: {snapshot: [unclosed", "not valid YAML"),
        ("- just\n- a list\n", "top level must be a mapping"),
    ],
)
def test_invalid_files_name_file_key_and_problem(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_missing_file_and_no_file(tmp_path):
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="AKSDIAG_CONFIG"):
        load_config(None)


def test_access_rules(tmp_path):
    cfg = load_config(write(tmp_path, GOOD))
    prod, lab = cfg.clusters["prod"], cfg.clusters["lab"]
    assert authorize(lab, "CANY", "UANY", set())[0]  # no allow block: anyone
    ok, why = authorize(prod, "C0OTHER", "U1", {"S0ONCALL"})
    assert not ok and "allow.channels" in why
    ok, why = authorize(prod, "C0PRODOPS", "U1", set())
    assert not ok and "allow.users or allow.usergroups" in why
    assert authorize(prod, "C0PRODOPS", "U1", {"S0ONCALL"})[0]
