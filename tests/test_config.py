"""Config parsing: every error names the key, the value and what was expected."""

import copy

import pytest
import yaml

from adaptive.config import load_config, parse_config
from adaptive.exceptions import ConfigError
from decision_rules import (
    Efficacy,
    Futility,
    Harm,
    HazardRatioSuperiority,
    MedianFutility,
    PredictiveFutility,
    Superiority,
)
from tests.conftest import CONFIG, config_dict, without_shape_groups


def parse(doc: dict):
    return parse_config(yaml.safe_dump(doc, sort_keys=False), "test.yaml")


def test_bundled_config_parses(design):
    assert design.arm_ids == ("arm1", "arm2", "arm3", "arm4", "arm5", "arm6", "arm7", "arm8")
    assert design.arm("arm8").status == "queued" and design.modelled_arms[-1] == "arm7"
    assert [a.label for a in design.arms][2:4] == ["DAV", "HAV"]
    assert set(design.endpoints) == {"crc", "orr", "mrd_negative_cr", "mortality_30d", "mortality_60d"}
    kinds = [type(r) for r in design.rules]
    assert kinds == [
        Efficacy,
        Futility,
        Harm,
        Harm,
        Superiority,
        MedianFutility,
        HazardRatioSuperiority,
        PredictiveFutility,
    ]
    # references resolved per arm from the rates; graduate_crc leaves out the randomized arms
    # (decided comparatively), arm6 (physician's choice) and the descriptive arm7
    assert design.rules[0].references == {"arm1": 0.15, "arm2": 0.22, "arm5": 0.15}
    assert design.rules[1].references["arm2"] == 0.34  # futility_rate, not the target 0.54
    assert set(design.rules[1].references) == {"arm1", "arm2", "arm3", "arm4", "arm5", "arm6"}
    flag, suspend, drop = design.rules[2].tiers
    assert (flag.action, suspend.action, drop.action) == ("flag", "suspend_enrolment", "drop_harm")
    assert drop.references["arm6"] == 0.35 and flag.references["arm7"] == 0.20  # every arm
    assert (flag.threshold, suspend.threshold, drop.threshold) == (0.8, 0.9, 0.975)
    assert design.rules[4].arms == ("arm4", "arm3")  # HAV : DAV, DAV the reference arm
    assert design.rules[4].prior == {"arm4": (0.35, 0.65), "arm3": (0.35, 0.65)}
    assert set(design.rules[7].success_references) == {"arm1", "arm2", "arm5"}
    randomized = [s for s in design.routing if s.is_randomized]
    assert [s.arms for s in randomized] == [("arm3", "arm4")]
    assert randomized[0].oriented("arm3", "arm4") == ("arm4", "arm3")
    assert design.arm("arm7").is_descriptive and design.arm("arm8").is_descriptive
    assert [s.cohort for s in design.routing if s.passes_on] == ["new_drug"]
    # mortality gets a Jeffreys prior, written into the config as run
    assert design.endpoints["mortality_30d"].model.prior == "jeffreys"
    assert design.as_dict()["endpoints"]["mortality_60d"]["model"]["prior"] == "jeffreys"


def test_load_config_hashes_file_bytes(design):
    import hashlib

    d = load_config(CONFIG)
    assert d.sha256 == hashlib.sha256(CONFIG.read_bytes()).hexdigest()
    assert d.path == CONFIG


def test_unknown_key_with_did_you_mean():
    doc = config_dict()
    doc["arms"]["arm1"]["statsu"] = "active"
    doc["rules"][0]["thresold"] = doc["rules"][0].pop("threshold")
    with pytest.raises(ConfigError) as exc:
        parse(doc)
    msg = str(exc.value)
    assert "arms.arm1.statsu: unknown key 'statsu'. Did you mean 'status'?" in msg
    assert "rules.0.thresold: unknown key 'thresold'. Did you mean 'threshold'?" in msg
    assert "rules.0.threshold: Field required" in msg


def test_a_misspelt_endpoint_key_is_never_suggested_to_its_references():
    doc = config_dict()
    doc["endpoints"]["CRc"] = doc["endpoints"].pop("crc")
    with pytest.raises(ConfigError) as exc:
        parse(doc)
    msg = str(exc.value)
    assert "endpoints.CRc: unknown endpoint 'CRc'" in msg and "Did you mean 'crc'?" in msg
    assert "Did you mean 'CRc'" not in msg  # the typo is not copied into every arm and rule
    assert "The key endpoints.CRc looks like a misspelling of it" in msg


def test_schema_errors_do_not_hide_the_cross_checks():
    doc = config_dict()
    doc["sampler"]["chains"] = 1000  # out of range: a schema error
    step = next(s for s in doc["routing"] if len(s["arms"]) > 1)
    step["allocation"] = {step["arms"][0]: 1, "arm44": 1}  # a cross-check error
    with pytest.raises(ConfigError) as exc:
        parse(doc)
    msg = str(exc.value)
    assert "sampler.chains: Input should be less than or equal to 64" in msg
    assert "allocation must give a weight for exactly the cohort's arms" in msg and "arm44" in msg
    assert "2 configuration problem(s)" in msg


def test_top_level_typo():
    doc = config_dict()
    doc["sampeler"] = doc.pop("sampler")
    with pytest.raises(ConfigError, match=r"sampeler: unknown key 'sampeler'. Did you mean 'sampler'\?"):
        parse(doc)


@pytest.mark.parametrize("value", [0.0, 1.0, 1.22, -0.1])
def test_probability_outside_unit_interval(value):
    doc = config_dict()
    doc["arms"]["arm2"]["rates"]["crc"]["null_rate"] = value
    with pytest.raises(
        ConfigError,
        match=rf"arms.arm2.rates.crc.null_rate: a probability must lie strictly between 0 and 1, got {value}",
    ):
        parse(doc)


def test_threshold_outside_unit_interval():
    doc = config_dict()
    doc["rules"][1]["threshold"] = 1.5
    with pytest.raises(ConfigError, match=r"rules.1.threshold: a probability must lie strictly"):
        parse(doc)


def test_rule_naming_missing_arm():
    doc = config_dict()
    doc["rules"][4]["arms"] = ["arm3", "arm9"]
    with pytest.raises(
        ConfigError, match=r"rules.4.arms: arm 'arm9' does not exist .* Did you mean 'arm8'\?"
    ):
        parse(doc)


def test_missing_arm_reported_even_with_schema_errors():
    doc = config_dict()
    doc["rules"][4]["arms"] = ["arm3", "arm9"]
    doc["arms"]["arm1"]["max_n"] = -3
    with pytest.raises(ConfigError) as exc:
        parse(doc)
    assert len(exc.value.problems) == 2
    assert "arm 'arm9' does not exist" in str(exc.value)
    assert "arms.arm1.max_n: Input should be greater than 0" in str(exc.value)


def test_rule_naming_unknown_endpoint():
    doc = config_dict()
    doc["rules"][3]["endpoint"] = "mortality_6d"
    with pytest.raises(
        ConfigError, match=r"endpoint 'mortality_6d' is not configured .* Did you mean 'mortality_60d'\?"
    ):
        parse(doc)


def test_unknown_rule_kind():
    doc = config_dict()
    doc["rules"][0]["kind"] = "efficacyy"
    with pytest.raises(
        ConfigError, match=r"rules.0.kind: unknown kind 'efficacyy'.*Did you mean 'efficacy'\?"
    ):
        parse(doc)


def test_unknown_model_kind():
    doc = config_dict()
    doc["endpoints"]["crc"]["model"]["kind"] = "exnxe"
    with pytest.raises(
        ConfigError, match=r"endpoints.crc.model.kind: unknown kind 'exnxe'.*Did you mean 'exnex'\?"
    ):
        parse(doc)


def test_unknown_endpoint_name():
    doc = config_dict()
    doc["endpoints"]["cr_rate"] = copy.deepcopy(doc["endpoints"]["crc"])
    with pytest.raises(ConfigError, match=r"endpoints.cr_rate: unknown endpoint 'cr_rate'"):
        parse(doc)


def test_target_must_exceed_null():
    doc = config_dict()
    doc["arms"]["arm5"]["rates"]["crc"]["target_rate"] = 0.10
    with pytest.raises(ConfigError, match=r"arms.arm5.rates.crc: target_rate 0.1 must exceed null_rate 0.15"):
        parse(doc)


def test_every_arm_needs_rates_for_every_endpoint():
    doc = config_dict()
    del doc["arms"]["arm6"]["rates"]["orr"]
    with pytest.raises(ConfigError, match=r"arms.arm6.rates: no rates for endpoint 'orr'"):
        parse(doc)


def test_rule_reference_missing_in_rates():
    doc = config_dict()
    del doc["arms"]["arm6"]["rates"]["mortality_30d"]["limit_rate"]
    with pytest.raises(
        ConfigError,
        match=r"rule uses limit_rate \(tiers flag, suspend_enrolment, drop_harm\) but arms.arm6.rates.mortality_30d has no limit_rate",
    ):
        parse(doc)


def test_harm_rule_needs_lower_is_better_endpoint():
    doc = config_dict()
    doc["rules"][2]["endpoint"] = "crc"
    with pytest.raises(ConfigError, match=r"harm rules need a lower-is-better endpoint"):
        parse(doc)


def test_routing_column_typo_and_value():
    doc = config_dict()
    doc["routing"][4]["when"] = {"intensive_elig": True}
    doc["routing"][1]["when"] = {"idh1": "yes"}
    with pytest.raises(ConfigError) as exc:
        parse(doc)
    msg = str(exc.value)
    assert "routing column 'intensive_elig'" in msg and "Did you mean 'intensive_eligible'?" in msg
    assert "idh1 can be (True, False), got 'yes'" in msg


def test_allocation_must_match_cohort_arms():
    doc = config_dict()
    doc["routing"][4]["allocation"] = {"arm3": 2}
    with pytest.raises(ConfigError, match=r"routing.4.allocation: allocation must give a weight"):
        parse(doc)


def test_duplicate_rule_ids():
    doc = config_dict()
    doc["rules"][1]["id"] = doc["rules"][0]["id"]
    with pytest.raises(ConfigError, match=r"rule id 'graduate_crc' is used twice"):
        parse(doc)


def test_all_problems_listed_at_once():
    doc = config_dict()
    doc["arms"]["arm1"]["rates"]["crc"]["null_rate"] = 2
    doc["arms"]["arm2"]["statsu"] = "x"
    doc["sampler"]["chains"] = 1
    with pytest.raises(ConfigError) as exc:
        parse(doc)
    assert len(exc.value.problems) == 3
    assert str(exc.value).startswith("3 configuration problem(s):")


def test_invalid_yaml_names_line():
    with pytest.raises(ConfigError, match=r"test.yaml line 3, column 1: not valid YAML"):
        parse_config("schema_version: 1\narms: [a, b\n", "test.yaml")


def test_missing_file():
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config("/nonexistent/config.yaml")


def _n_arm_config(k: int) -> dict:
    doc = config_dict()
    template = doc["arms"]["arm5"]
    doc["arms"] = {f"a{i:02d}": {**copy.deepcopy(template), "label": f"Arm {i}"} for i in range(1, k + 1)}
    doc["routing"] = [
        {"cohort": "all", "arms": list(doc["arms"]), "allocation": dict.fromkeys(doc["arms"], 1)}
    ]
    doc["rules"] = [r for r in doc["rules"] if r["kind"] not in ("superiority", "hazard_ratio")]
    for r in doc["rules"]:
        r.pop("arms", None)  # every arm
        if r["kind"] == "efficacy":  # one randomized cohort of k arms: say so explicitly
            r["allow_in_randomized"] = True
    doc.pop("randomization")
    doc["rules"].append(
        {"id": "pair", "kind": "superiority", "endpoint": "crc", "arms": ["a01", "a02"], "threshold": 0.9}
    )
    return without_shape_groups(doc)


@pytest.mark.parametrize("k", [2, 12])
def test_arms_are_data(k):
    d = parse(_n_arm_config(k))
    assert len(d.arm_ids) == k
    assert len(d.rules[0].references) == k
