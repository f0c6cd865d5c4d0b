"""Config keys of the platform adaptation: randomization, predictive rules, queued arms, ledger."""

import pytest

from adaptive.config import load_config
from adaptive.exceptions import ConfigError
from decision_rules import PredictiveFutility
from tests.conftest import CONFIG, config_dict, design_from, write_config


def test_bundled_adaptation_is_built(design):
    (rule,) = design.allocation_rules
    assert (rule.cohort, rule.arms, rule.kind, rule.power) == (
        "fit_no_target",
        ("arm3", "arm4"),
        "thall_wathen",
        "n/(2N)",
    )
    assert (rule.burn_in, rule.min_prob, rule.max_prob, rule.max_change) == (20, 0.2, 0.8, 0.15)
    assert rule.ratio == {"arm3": 1, "arm4": 1}
    pp = design.rules[-1]
    assert isinstance(pp, PredictiveFutility) and pp.success_rule == "graduate_crc"
    assert pp.success_references["arm1"] == 0.15 and pp.success_threshold == 0.975
    assert pp.max_n["arm5"] == 40 and set(pp.success_references) == {"arm1", "arm2", "arm5"}
    arm8 = design.arm("arm8")
    assert arm8.status == "queued" and arm8.entry.after_closure_of == ["arm7"]
    assert arm8.exchangeable_after == 10 and design.arm("arm1").exchangeable_after == 0
    assert design.ledger_path is None


def test_ledger_path_is_relative_to_the_config_file(tmp_path):
    doc = config_dict()
    doc["ledger"] = {"path": "records/trial.sqlite"}
    d = load_config(write_config(tmp_path, doc))
    assert d.ledger_path == tmp_path / "records" / "trial.sqlite"
    assert load_config(CONFIG).ledger_path is None


def pp_rule(doc: dict) -> dict:
    """The bundled predictive futility rule (found by id: its index moves as rules are added)."""
    return next(r for r in doc["rules"] if r["id"] == "pp_futility_crc")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            lambda d: d["randomization"][0].update(cohort="fit_no_targt"),
            r"no routing step has cohort 'fit_no_targt'.*Did you mean 'fit_no_target'\?",
        ),
        (lambda d: d["randomization"][0].update(cohort="idh1"), "needs a routing step with two or more arms"),
        (
            lambda d: d["randomization"][0].update(min_prob=0.6),
            r"min_prob 0.6 cannot be given to all 2 arms.*at most 1/2",
        ),
        (lambda d: d["randomization"][0].update(max_prob=0.4), r"max_prob 0.4 is below 1/2"),
        (
            lambda d: d["randomization"][0].update(endpoint="orrr"),
            r"endpoint 'orrr' is not configured.*Did you mean 'orr'\?",
        ),
        (lambda d: d["randomization"][0].update(kind="thompson"), r"randomization.0.kind"),
        (lambda d: d["randomization"][0].update(burnin=5), r"unknown key 'burnin'. Did you mean 'burn_in'\?"),
        (lambda d: d["randomization"].append(dict(d["randomization"][0])), "has two randomization entries"),
        (
            lambda d: pp_rule(d).update(success_rule="graduate"),
            r"no rule has id 'graduate'.*Did you mean 'graduate_crc'\?",
        ),
        (
            lambda d: pp_rule(d).update(success_rule="futility_crc"),
            "is a futility rule; the success predicted must be an efficacy rule",
        ),
        (lambda d: pp_rule(d).update(endpoint="orr"), "differs from the endpoint 'crc' of success_rule"),
        (
            lambda d: d["arms"]["arm8"]["entry"].update(cohort="new_drugs"),
            r"no routing step has cohort 'new_drugs'.*Did you mean 'new_drug'\?",
        ),
        (
            lambda d: d["arms"]["arm8"]["entry"].update(after_closure_of=["arm77"]),
            r"arm 'arm77' does not exist",
        ),
        (
            lambda d: d["arms"]["arm8"]["entry"].update(after_closure_of=["arm8"]),
            "an arm cannot wait for itself",
        ),
        (
            lambda d: d["arms"]["arm8"]["entry"].update(max_open=7),
            r"unknown key 'max_open'. Did you mean 'max_open_arms'\?",
        ),
        (
            lambda d: d["arms"]["arm1"].update(closed_on="2026-01-01"),
            "has closed_on 2026-01-01 but status 'active'",
        ),
        (
            lambda d: d["arms"]["arm1"].update(
                status="dropped", opened_on="2026-02-01", closed_on="2026-01-01"
            ),
            "closed_on 2026-01-01 is before opened_on 2026-02-01",
        ),
        (lambda d: d["arms"]["arm8"].update(borrowing={"w": 1.5}), r"arms.arm8.borrowing.w"),
    ],
)
def test_adaptation_config_errors(edit, match):
    doc = config_dict()
    edit(doc)
    with pytest.raises(ConfigError, match=match):
        design_from(doc)


def test_every_adaptation_problem_is_listed_at_once():
    doc = config_dict()
    doc["randomization"][0]["cohort"] = "nope"
    pp_rule(doc)["success_rule"] = "nope"
    doc["arms"]["arm8"]["entry"]["cohort"] = "nope"
    with pytest.raises(ConfigError) as exc:
        design_from(doc)
    assert str(exc.value).startswith("3 configuration problem(s):")
