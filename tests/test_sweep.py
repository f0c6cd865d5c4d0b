"""`adaptive simulate --sweep`: one study per value, equal to separate studies of changed files."""

import json

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from adaptive.cli import main
from adaptive.exceptions import ConfigError
from adaptive.simulate.study import simulate_study
from adaptive.simulate.sweep import parse_sweep, set_path
from tests.test_simulate import scenario, single_arm_config


def _files(tmp_path):
    cfg = tmp_path / "design.yaml"
    cfg.write_text(yaml.safe_dump(single_arm_config()))
    sc = tmp_path / "s.yaml"
    sc.write_text(yaml.safe_dump(scenario({"x": 0.4})))
    return cfg, sc


def test_parse_sweep_targets_values_and_errors():
    s = parse_sweep("rules.eff.threshold=0.9,0.95")
    assert (s.target, s.path, s.values) == ("config", ("rules", "eff", "threshold"), (0.9, 0.95))
    s = parse_sweep("scenario.arms.x.response_days=[28, 150],[21, 56]")
    assert (s.target, s.values, s.key) == ("scenario", ([28, 150], [21, 56]), "scenario.arms.x.response_days")
    for bad in ("threshold", "a.b=", "=1,2", "a..b=1", "a=1,1"):
        with pytest.raises(ConfigError):
            parse_sweep(bad)


def test_set_path_addresses_rules_by_id_and_refuses_new_keys():
    doc = {"rules": [{"id": "eff", "threshold": 0.9}], "arms": {"x": {"max_n": 30}}}
    assert set_path(doc, ("rules", "eff", "threshold"), 0.8, "f")["rules"][0]["threshold"] == 0.8
    assert set_path(doc, ("rules", "0", "threshold"), 0.7, "f")["rules"][0]["threshold"] == 0.7
    assert doc["rules"][0]["threshold"] == 0.9  # a copy
    with pytest.raises(ConfigError, match=r"no item 'fut' at rules.fut \(ids: eff\)"):
        set_path(doc, ("rules", "fut", "threshold"), 0.1, "f")
    with pytest.raises(ConfigError, match=r"arms.x.min_n is not set in this file \(keys here: max_n\)"):
        set_path(doc, ("arms", "x", "min_n"), 3, "f")


@given(st.lists(st.floats(0.01, 0.99, allow_nan=False), min_size=1, max_size=4, unique=True))
def test_sweep_values_round_trip(values):
    s = parse_sweep("rules.eff.threshold=" + ",".join(repr(v) for v in values))
    assert list(s.values) == values


def test_sweep_equals_separate_studies(tmp_path):
    cfg, sc = _files(tmp_path)
    out = tmp_path / "sweep"
    res = CliRunner().invoke(
        main,
        ["simulate", "--config", str(cfg), "--scenario", str(sc), "--trials", "60", "--seed", "3",
         "--workers", "1", "--out", str(out), "--sweep", "rules.eff.threshold=0.9,0.99"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "threshold = 0.99" in res.output
    sweep = json.loads((out / "sweep.json").read_text())
    assert sweep["values"] == [0.9, 0.99] and [r["folder"] for r in sweep["runs"]] == ["value-0", "value-1"]
    for i, thr in enumerate((0.9, 0.99)):
        doc = single_arm_config()
        next(r for r in doc["rules"] if r["id"] == "eff")["threshold"] = thr
        own = tmp_path / f"c{i}.yaml"
        own.write_text(yaml.safe_dump(doc))
        simulate_study(own, [sc], 60, tmp_path / f"alone{i}", seed=3, workers=1)
        alone = json.loads((tmp_path / f"alone{i}" / "oc.json").read_text())
        swept = json.loads((out / f"value-{i}" / "study" / "oc.json").read_text())
        assert swept["scenarios"][0]["allocations"] == alone["scenarios"][0]["allocations"]
    table = pd.read_csv(out / "sweep.csv")
    assert list(table["value"]) == [0.9, 0.99]
    grad = table.set_index("value")["prob_graduate"]
    assert grad[0.9] >= grad[0.99]  # a stricter threshold never graduates more (common random numbers)


def test_sweep_of_a_scenario_value_and_a_missing_key(tmp_path):
    cfg, sc = _files(tmp_path)
    out = tmp_path / "s"
    res = CliRunner().invoke(
        main,
        ["simulate", "--config", str(cfg), "--scenario", str(sc), "--trials", "20", "--workers", "1",
         "--out", str(out), "--sweep", "scenario.arms.x.cr=0.2,0.6"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    changed = yaml.safe_load((out / "value-1" / "inputs" / "s.yaml").read_text())
    assert changed["arms"]["x"]["cr"] == 0.6
    bad = tmp_path / "bad"
    res = CliRunner().invoke(
        main,
        ["simulate", "--config", str(cfg), "--scenario", str(sc), "--trials", "20", "--workers", "1",
         "--out", str(bad), "--sweep", "rules.nope.threshold=0.1,0.2"],
    )  # fmt: skip
    assert res.exit_code == 2
    assert "no item 'nope' at rules.nope" in res.output and "Traceback" not in res.output
    assert not bad.exists()
