"""The config's survival section, benchmarks and survival rules: every error names key, value and fix."""

import copy

import pytest
import yaml

from adaptive.config import parse_config
from adaptive.exceptions import ConfigError
from decision_rules import HazardRatioSuperiority, MedianEfficacy, MedianFutility
from models.survival import PiecewiseExponential, model_from_config
from tests.conftest import config_dict, without_survival


def parse(doc: dict):
    return parse_config(yaml.safe_dump(doc, sort_keys=False), "test.yaml")


def problems(doc: dict) -> str:
    with pytest.raises(ConfigError) as exc:
        parse(doc)
    return str(exc.value)


def test_bundled_survival_section(design):
    sv = design.survival
    assert sv.cut_points_days == [0, 30, 60, 120, 240, 365, 730]
    assert sv.censor_at_hsct is False
    assert list(sv.endpoints) == ["os", "efs", "rfs"]
    assert design.arm("arm3").survival_benchmarks.os_median_days == 271
    assert design.arm("arm1").survival_benchmarks.get("rfs") == 250
    assert design.arm("arm2").survival_benchmarks.get("efs") is None
    fut, hr = design.rules[5], design.rules[6]
    assert isinstance(fut, MedianFutility) and fut.references["arm6"] == 73 and fut.min_evaluable == 10
    # experimental : reference, DAV (arm3) the cohort's reference arm
    assert isinstance(hr, HazardRatioSuperiority) and hr.arms == ("arm4", "arm3") and hr.hr_margin == 1.0
    assert "arm7" not in fut.references  # descriptive
    m = model_from_config(sv.endpoints["os"].model)
    # arm levels estimated independently: no pooling across regimens
    assert m == PiecewiseExponential(
        kind="independent", level_median_days=240, level_sd=1.0, smoothing_sd=0.5
    )
    assert sv.endpoints["os"].model.level.centred_on == "benchmark"
    assert sv.endpoints["os"].model.shape_groups == {
        "intensive": ["arm3", "arm4"],
        "non_intensive": ["arm1", "arm2", "arm5", "arm6", "arm7", "arm8"],
    }


def test_survival_model_of_the_look_centres_each_arm_on_its_benchmark(design):
    from adaptive.interim import survival_model

    m = survival_model(design, "os")
    # the modelled arms (queued arm8 is not), each on its own OS benchmark; DAV/HAV one shape group
    assert m.level_median_days == (170.0, 170.0, 271.0, 271.0, 204.0, 73.0, 170.0)
    assert m.shape_groups == (1, 1, 0, 0, 1, 1, 1)
    efs = survival_model(design, "efs")  # no EFS benchmarks: one centre for every arm
    assert efs.level_median_days == (240.0,) * 7 and efs.shape_groups == m.shape_groups
    assert efs.per_arm_levels and m.per_arm_levels  # one compiled structure for OS, EFS and RFS


def test_shape_groups_validated():
    doc = config_dict()
    groups = doc["survival"]["endpoints"]["rfs"]["model"]["shape_groups"]
    groups["intensive"] = ["arm3", "arm4", "arm9", "arm5"]  # arm9 unknown, arm5 twice
    groups["non_intensive"] = [a for a in groups["non_intensive"] if a != "arm7"]  # arm7 in none
    text = problems(doc)
    assert "survival.endpoints.rfs.model.shape_groups.intensive: arm 'arm9' does not exist" in text
    assert "arm 'arm5' is already in group 'intensive'" in text
    assert "every arm needs a baseline-shape group; arm7 is in none" in text


def test_hazard_ratio_across_shape_groups_is_refused():
    doc = config_dict()
    doc["survival"]["endpoints"]["os"]["model"]["shape_groups"] = {
        "a": ["arm3"],
        "b": [a for a in doc["arms"] if a != "arm3"],
    }
    assert "arm4 and arm3 have different baseline-shape groups (b, a) for os" in problems(doc)


@pytest.mark.parametrize("endpoint", ["efs", "rfs"])
def test_hazard_ratio_on_a_response_conditioned_endpoint_is_refused(endpoint):
    # the EFS model's hazard is that of the patients in CR/CRi by the landmark (the failures are a
    # point mass), RFS's that of the responders: neither compares all randomized patients
    doc = config_dict()
    doc["rules"].append(
        {
            "id": "hr",
            "kind": "hazard_ratio",
            "endpoint": endpoint,
            "arms": ["arm4", "arm3"],
            "threshold": 0.99,
        }
    )
    text = problems(doc)
    assert (
        f"endpoint: a hazard_ratio rule decides a randomized comparison, but the {endpoint} model's" in text
    )
    assert "it conditions on response, which breaks the randomization" in text
    doc["rules"][-1]["endpoint"] = "os"
    parse_config(yaml.safe_dump(doc), "c.yaml")  # the same comparison on OS is accepted


def test_response_landmark_within_follow_up():
    doc = config_dict()
    doc["arms"]["arm5"]["response_landmark_days"] = 800
    assert "arms.arm5.response_landmark_days: the response landmark (800 days) is after the end" in problems(
        doc
    )
    doc["arms"]["arm5"]["response_landmark_days"] = 0
    assert "arms.arm5.response_landmark_days" in problems(doc)
    doc = config_dict()
    doc["arms"]["arm5"].pop("response_landmark_days")
    assert parse(doc).arm("arm5").response_landmark_days == 56  # assessment.response_window_days


def test_survival_section_is_optional():
    d = parse(without_survival(config_dict()))
    assert d.survival is None
    assert all(a.survival_benchmarks.get("os") is None for a in d.arms)


@pytest.mark.parametrize(
    ("cuts", "message"),
    [
        ([30, 60, 730], r"cut points must start at 0, got 30"),
        ([0, 60, 30, 730], r"cut points must be strictly increasing; got 60 then 30"),
        ([0, 30, 30, 730], r"strictly increasing; got 30 then 30"),
        ([0], r"give at least two cut points"),
    ],
)
def test_cut_points_validated(cuts, message):
    doc = config_dict()
    doc["survival"]["cut_points_days"] = cuts
    assert "survival.cut_points_days" in problems(doc)
    with pytest.raises(ConfigError, match=message):
        parse(doc)


def test_last_cut_point_must_be_end_of_follow_up():
    doc = config_dict()
    doc["survival"]["cut_points_days"] = [0, 30, 60, 365]
    with pytest.raises(
        ConfigError,
        match=r"survival.cut_points_days: the last cut point \(365\) must be the end of follow-up, "
        r"assessment.follow_up_days = 730.*End the list with 730",
    ):
        parse(doc)
    doc["assessment"]["follow_up_days"] = 365
    assert parse(doc).survival.cut_points_days[-1] == 365


def test_unknown_survival_endpoint_with_did_you_mean():
    doc = config_dict()
    doc["survival"]["endpoints"]["efss"] = doc["survival"]["endpoints"].pop("efs")
    with pytest.raises(
        ConfigError, match=r"survival.endpoints.efss: unknown survival endpoint 'efss'.*Did you mean 'efs'\?"
    ):
        parse(doc)


def test_unknown_keys_in_survival_blocks():
    doc = config_dict()
    doc["survival"]["censor_at_hct"] = True
    doc["arms"]["arm3"]["survival_benchmarks"]["os_median_day"] = 200
    doc["survival"]["endpoints"]["os"]["model"]["smoothing"] = 0.5
    msg = problems(doc)
    assert "survival.censor_at_hct: unknown key 'censor_at_hct'. Did you mean 'censor_at_hsct'?" in msg
    assert (
        "arms.arm3.survival_benchmarks.os_median_day: unknown key 'os_median_day'. "
        "Did you mean 'os_median_days'?" in msg
    )
    assert (
        "survival.endpoints.os.model.smoothing: unknown key 'smoothing'. Did you mean 'smoothing_sd'?" in msg
    )


def test_survival_model_kind_and_priors():
    doc = config_dict()
    doc["survival"]["endpoints"]["os"]["model"]["kind"] = "hierarchcal"
    doc["survival"]["endpoints"]["rfs"]["model"]["level"]["sd"] = -1
    doc["survival"]["endpoints"]["efs"]["model"]["level"]["median_days"] = 0
    msg = problems(doc)
    assert "survival.endpoints.os.model.kind: unknown kind 'hierarchcal'" in msg
    assert "Did you mean 'hierarchical'?" in msg
    assert "survival.endpoints.rfs.model.level.sd: Input should be greater than 0" in msg
    assert "survival.endpoints.efs.model.level.median_days: Input should be greater than 0" in msg


def test_independent_model_has_no_tau():
    doc = config_dict()
    doc["survival"]["endpoints"]["os"]["model"]["tau"] = {"dist": "half_normal", "scale": 0.5}
    with pytest.raises(ConfigError, match=r"survival.endpoints.os.model.tau: unknown key 'tau'"):
        parse(doc)
    del doc["survival"]["endpoints"]["os"]["model"]["tau"]
    assert parse(doc).survival.endpoints["os"].model.kind == "independent"


def test_benchmark_must_be_positive_and_for_a_modelled_endpoint():
    doc = config_dict()
    doc["arms"]["arm2"]["survival_benchmarks"]["os_median_days"] = -5
    assert "arms.arm2.survival_benchmarks.os_median_days: Input should be greater than 0" in problems(doc)
    doc = config_dict()
    del doc["survival"]["endpoints"]["rfs"]
    with pytest.raises(
        ConfigError,
        match=r"arms.arm1.survival_benchmarks.rfs_median_days: survival endpoint 'rfs' is not modelled",
    ):
        parse(doc)


def _rule(**kw):
    """A survival efficacy rule on the arms a single-arm efficacy rule may cover (not arm3/arm4/arm7/arm8)."""
    arms = ["arm1", "arm2", "arm5", "arm6"]
    return {"id": "r", "kind": "survival_efficacy", "endpoint": "os", "threshold": 0.9, "arms": arms, **kw}


def test_median_rule_needs_a_benchmark_for_every_arm():
    doc = config_dict()
    i = len(doc["rules"])
    doc["rules"].append(_rule(endpoint="rfs"))
    with pytest.raises(
        ConfigError,
        match=rf"rules.{i} \(r\).reference: rule uses the benchmark median but arm2, arm5, "
        r"arm6 have no survival_benchmarks.rfs_median_days",
    ):
        parse(doc)
    doc["rules"][-1]["arms"] = ["arm1"]
    assert parse(doc).rules[-1].references == {"arm1": 250}


def test_median_rule_with_reference_in_days():
    doc = config_dict()
    # a single-arm survival efficacy rule on the randomized arms only when the rule says so
    doc["rules"].append(_rule(endpoint="efs", reference=180, min_events=5, arms=["arm3", "arm4"]))
    with pytest.raises(ConfigError, match=r"randomized cohort fit_no_target.*allow_in_randomized: true"):
        parse(doc)
    doc["rules"][-1]["allow_in_randomized"] = True
    rule = parse(doc).rules[-1]
    assert isinstance(rule, MedianEfficacy)
    assert rule.references == {"arm3": 180.0, "arm4": 180.0} and rule.reference_name == "180 days"
    assert rule.min_evaluable == 5


def test_survival_rule_errors_are_all_listed():
    doc = config_dict()
    i = len(doc["rules"])  # the index of the first rule added
    doc["rules"] += [
        _rule(id="a", endpoint="ofs"),  # typo
        _rule(id="b", endpoint="crc"),  # binary endpoint
        {"id": "c", "kind": "hazard_ratio", "endpoint": "os", "arms": ["arm3", "arm3"], "threshold": 0.9},
        {"id": "d", "kind": "hazard_ratio", "endpoint": "os", "arms": ["arm3", "arm99"], "threshold": 0.9},
        {"id": "e", "kind": "efficacy", "endpoint": "os", "reference": "null_rate", "threshold": 0.9},
    ]
    with pytest.raises(ConfigError) as exc:
        parse(doc)
    msg = str(exc.value)
    assert len(exc.value.problems) == 5
    assert (
        f"rules.{i} (a).endpoint: survival endpoint 'ofs' is not modelled" in msg
        and "Did you mean 'os'?" in msg
    )
    assert (
        f"rules.{i + 1} (b).endpoint: crc is a binary endpoint; survival_efficacy rules take a survival"
        in msg
    )
    assert f"rules.{i + 2} (c).arms: a comparison needs two different arms." in msg
    assert f"rules.{i + 3}.arms: arm 'arm99' does not exist" in msg
    assert f"rules.{i + 4} (e).kind: os is a survival endpoint; use kind survival_efficacy" in msg


def test_survival_rule_without_survival_section():
    doc = without_survival(config_dict())
    doc["rules"].append(
        {"id": "h", "kind": "hazard_ratio", "endpoint": "os", "arms": ["arm3", "arm4"], "threshold": 0.9}
    )
    with pytest.raises(ConfigError, match=r"hazard_ratio rules need a 'survival:' section that models 'os'"):
        parse(doc)


def test_hazard_ratio_margin_range_and_kind_typo():
    doc = config_dict()
    doc["rules"][6]["hr_margin"] = 1.5
    assert "rules.6.hr_margin: Input should be less than or equal to 1" in problems(doc)
    doc = config_dict()
    doc["rules"][6]["kind"] = "hazard_ration"
    assert "rules.6.kind: unknown kind 'hazard_ration'" in problems(doc)
    assert "Did you mean 'hazard_ratio'?" in problems(doc)
    doc = config_dict()
    doc["rules"][6]["min_evaluable"] = 3  # survival rules count events: min_events
    assert "rules.6.min_evaluable: unknown key 'min_evaluable'. Did you mean 'min_events'?" in problems(doc)


def test_as_dict_round_trips_survival():
    d = parse(config_dict())
    again = parse(copy.deepcopy(d.as_dict()))
    assert again.survival == d.survival
    assert again.arm("arm6").survival_benchmarks == d.arm("arm6").survival_benchmarks
