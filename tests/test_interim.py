"""`adaptive interim` and `adaptive validate` end to end, through click's CliRunner."""

import copy
import json
from pathlib import Path

import arviz as az
import numpy as np
import pytest
from click.testing import CliRunner

from adaptive.cli import main
from models.exact import hierarchical_summary
from tests.conftest import EXAMPLE, config_dict, rows_frame, small_sampler, write_config, write_csv

CUTOFF = "2026-10-31"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def small_config(tmp_path_factory):
    return write_config(tmp_path_factory.mktemp("cfg"), small_sampler(config_dict()))


@pytest.fixture(scope="module")
def look(small_config, tmp_path_factory):
    out = tmp_path_factory.mktemp("looks") / "look1"
    res = run(
        "interim", "--config", small_config, "--data", EXAMPLE, "--cutoff", CUTOFF, "--out", out, "--seed", 42
    )
    assert res.exit_code == 0, res.output
    return out, json.loads((out / "recommendations.json").read_text()), res.output


@pytest.mark.slow
def test_outputs_and_provenance(look, small_config):
    import hashlib

    out, rep, output = look
    assert sorted(p.name for p in out.iterdir()) == ["posterior.nc", "recommendations.json"]
    assert rep["status"] == "ok" and rep["refusal"] is None
    assert rep["cutoff"] == CUTOFF and rep["seed"] == 42
    assert rep["data_sha256"] == hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    assert rep["config_sha256"] == hashlib.sha256(Path(small_config).read_bytes()).hexdigest()
    assert {"python", "pymc", "arviz", "numpy", "nutpie"} <= set(rep["versions"])
    d = rep["diagnostics"]
    assert {"max_rhat", "min_ess_bulk", "divergences", "converged"} <= set(d)
    assert d["converged"] is True and d["max_rhat"] <= 1.02
    assert rep["config"]["sampler"]["draws"] == 1000
    assert "interim look, data cutoff 2026-10-31" in output


@pytest.mark.slow
def test_arm_summaries(look):
    _, rep, _ = look
    assert [a["arm"] for a in rep["arms"]] == [f"arm{i}" for i in range(1, 9)]
    assert rep["arms"][-1]["status"] == "queued" and rep["arms"][-1]["endpoints"]["crc"]["mean"] is None
    for a in rep["arms"][:-1]:
        crc = a["endpoints"]["crc"]
        for key in (
            "n_evaluable",
            "responders",
            "mean",
            "ci95_low",
            "ci95_high",
            "prob_above_null",
            "prob_above_target",
            "mcse",
        ):
            assert crc[key] is not None, (a["arm"], key)
        assert crc["ci95_low"] < crc["mean"] < crc["ci95_high"]
        assert 0 <= crc["responders"] <= crc["n_evaluable"] <= a["n_enrolled"]
        assert set(a["endpoints"]) == {"crc", "orr", "mrd_negative_cr", "mortality_30d", "mortality_60d"}
        kinds = {r["kind"] for r in a["rules"]}
        assert kinds == {"efficacy", "futility", "harm", "predictive_futility"}
        for r in a["rules"]:
            assert {"prob", "mcse", "threshold", "fired", "sentence"} <= set(r)
    (cmp,) = rep["comparisons"]
    assert set(cmp["arms"]) == {"arm3", "arm4"}


@pytest.mark.slow
def test_recommendations_allocation_and_queue_of_the_bundled_look(look):
    _, rep, output = look
    from adaptive.recommend import ACTIONS

    assert rep["look"]["number"] == 1 and rep["look"]["previous_look"] is None
    assert {r["action"] for r in rep["recommendations"]} <= set(ACTIONS)
    assert [r["arm"] for r in rep["recommendations"] if r["arm"] and r["action"] != "add_arm"] == [
        f"arm{i}" for i in range(1, 8)
    ]
    alloc = rep["allocation"]["fit_no_target"]
    assert alloc["kind"] == "thall_wathen" and sum(alloc["probabilities"].values()) == pytest.approx(1)
    assert 0.35 - 1e-9 <= alloc["probabilities"]["arm3"] <= 0.65 + 1e-9
    pb = alloc["inputs"]["prob_best"]
    assert pb["arm3"] + pb["arm4"] == pytest.approx(1)
    # the EXNEX endpoint's predictive rule works on the draws (importance reweighting)
    pp = [r for a in rep["arms"] for r in a["rules"] if r["kind"] == "predictive_futility"]
    assert len(pp) == 7 and all("importance reweighting" in r["extra"]["method"] for r in pp)
    assert rep["queue"][0]["arm"] == "arm8" and "recommendations (for the DSMB" in output


@pytest.mark.slow
def test_crc_posterior_matches_quadrature_of_same_counts(look):
    """The fitted EXNEX CRc posterior agrees with quadrature on the counts the look derived."""
    _, rep, _ = look
    arms = [a for a in rep["arms"] if a["status"] != "queued"]
    n = np.array([a["endpoints"]["crc"]["n_evaluable"] for a in arms])
    y = np.array([a["endpoints"]["crc"]["responders"] for a in arms])
    null = np.array([a["endpoints"]["crc"]["null_rate"] for a in arms])
    m = rep["config"]["endpoints"]["crc"]["model"]
    exact = hierarchical_summary(
        n,
        y,
        null,
        mu_mean=m["mu"]["mean"],
        mu_sd=m["mu"]["sd"],
        tau_scale=m["tau"]["scale"],
        w=m["w"],
        nex_mean=m["nex"]["mean"],
        nex_sd=m["nex"]["sd"],
        n_mu=121,
        n_tau=61,
    )
    for k, a in enumerate(arms):
        crc = a["endpoints"]["crc"]
        assert crc["mean"] == pytest.approx(exact.mean[k], abs=0.01)
        assert abs(crc["prob_above_null"] - exact.prob_above[k]) < max(0.02, 4 * crc["mcse_prob_above_null"])


@pytest.mark.slow
def test_posterior_netcdf_has_one_group_per_endpoint(look):
    out, rep, _ = look
    for ep in ("crc", "orr", "mrd_negative_cr", "mortality_30d", "mortality_60d"):
        idata = az.InferenceData.from_netcdf(out / "posterior.nc", base_group=ep)
        p = idata.posterior["p"]
        assert p.dims == ("chain", "draw", "arm")
        assert list(p.arm.values) == [f"arm{i}" for i in range(1, 8)]
        assert idata.constant_data["n"].values.tolist() == [
            a["endpoints"][ep]["n_evaluable"] for a in rep["arms"] if a["status"] != "queued"
        ]


@pytest.mark.slow
def test_same_seed_same_bytes(look, small_config, tmp_path):
    out, _, _ = look
    res = run(
        "interim",
        "--config",
        small_config,
        "--data",
        EXAMPLE,
        "--cutoff",
        CUTOFF,
        "--out",
        tmp_path / "again",
        "--seed",
        42,
    )
    assert res.exit_code == 0
    assert (tmp_path / "again" / "recommendations.json").read_bytes() == (
        out / "recommendations.json"
    ).read_bytes()


def test_refuses_non_empty_output_folder(small_config, tmp_path):
    out = tmp_path / "look"
    out.mkdir()
    (out / "keep.txt").write_text("earlier look")
    res = run("interim", "--config", small_config, "--data", EXAMPLE, "--cutoff", CUTOFF, "--out", out)
    assert res.exit_code == 2
    assert "already holds results" in res.output
    assert (out / "keep.txt").read_text() == "earlier look"


def test_bad_cutoff_and_bad_data_exit_2(small_config, tmp_path):
    res = run(
        "interim",
        "--config",
        small_config,
        "--data",
        EXAMPLE,
        "--cutoff",
        "31/10/2026",
        "--out",
        tmp_path / "x",
    )
    assert res.exit_code == 2 and "not an ISO 8601 date" in res.output
    bad = write_csv(tmp_path, rows_frame({"arm": "arm9"}, {"death_on": "2020-01-01"}))
    res = run("interim", "--config", small_config, "--data", bad, "--cutoff", CUTOFF, "--out", tmp_path / "y")
    assert res.exit_code == 2
    assert (
        "2 data problem(s)" in res.output
        and "line 2, column 'arm'" in res.output
        and "line 3, column 'death_on'" in res.output
    )
    assert not (tmp_path / "y").exists()


def test_failure_mid_write_leaves_nothing(small_config, tmp_path, monkeypatch):
    import adaptive.interim as interim

    def boom(path, fits):
        Path(path).write_text("partial")
        raise OSError("disk full")

    monkeypatch.setattr(interim, "write_posterior", boom)
    cfg = small_sampler(config_dict(), draws=200, tune=200)
    for ep in cfg["endpoints"].values():
        ep["model"] = {"kind": "independent"}
    path = write_config(tmp_path, cfg)
    with pytest.raises(OSError, match="disk full"):
        interim.run_interim(path, EXAMPLE, interim.date(2026, 10, 31), tmp_path / "look")
    assert list(tmp_path.iterdir()) == [path]  # no output folder, no temporary folder


@pytest.mark.slow
def test_non_convergence_is_refused_loudly(tmp_path):
    cfg = small_sampler(config_dict(), draws=300, tune=200)
    cfg["sampler"]["limits"]["min_ess_bulk"] = 1e9  # impossible: every fit fails
    cfg["sampler"]["retries"] = [{"tune": 300, "target_accept": 0.95}]
    cfg["endpoints"] = {k: v for k, v in cfg["endpoints"].items() if k in ("crc", "mortality_30d")}
    cfg["rules"] = [r for r in cfg["rules"] if r["endpoint"] in cfg["endpoints"]]
    for arm in cfg["arms"].values():
        arm["rates"] = {k: v for k, v in arm["rates"].items() if k in cfg["endpoints"]}
    path = write_config(tmp_path, cfg)
    out = tmp_path / "look"
    res = run("interim", "--config", path, "--data", EXAMPLE, "--cutoff", CUTOFF, "--out", out)
    assert res.exit_code == 3
    assert "REFUSED" in res.output and "min bulk ESS" in res.output
    rep = json.loads((out / "recommendations.json").read_text())
    assert rep["status"] == "refused" and "No recommendation" in rep["refusal"]
    assert rep["fired"] == [] and rep["comparisons"] == []
    assert all(a["rules"] == [] for a in rep["arms"])
    assert all(a["endpoints"]["crc"]["prob_above_null"] is None for a in rep["arms"])
    attempts = rep["diagnostics"]["by_endpoint"]["crc"]["attempts"]
    assert [(a["tune"], a["target_accept"]) for a in attempts] == [(200, 0.9), (300, 0.95)]


def test_validate_ok_and_lists_rules(tmp_path):
    res = run("validate", "--config", "configs/rr_aml.yaml", "--data", EXAMPLE, "--cutoff", CUTOFF)
    assert res.exit_code == 0, res.output
    assert "config configs/rr_aml.yaml: OK (8 arms, 5 endpoints, 6 rules" in res.output
    assert "data" in res.output and "220 patients" in res.output


def test_validate_lists_every_config_problem(tmp_path):
    doc = config_dict()
    doc["arms"]["arm1"]["statsu"] = "x"
    doc["rules"][4]["arms"] = ["arm3", "arm44"]
    doc["arms"]["arm2"]["rates"]["crc"]["null_rate"] = 1.5
    res = run("validate", "--config", write_config(tmp_path, doc))
    assert res.exit_code == 2
    assert "3 configuration problem(s)" in res.output


@pytest.mark.slow
def test_twelve_arm_trial_runs_the_same_way(tmp_path):
    """Arms are data: a 12-arm config with one randomized pair runs end to end."""
    doc = small_sampler(config_dict(), draws=500, tune=500)
    template = copy.deepcopy(doc["arms"]["arm3"])
    doc["arms"] = {f"x{i:02d}": {**copy.deepcopy(template), "label": f"Regimen {i}"} for i in range(1, 13)}
    doc["routing"] = [
        {"cohort": "all", "arms": list(doc["arms"]), "allocation": dict.fromkeys(doc["arms"], 1)}
    ]
    doc.pop("randomization")
    doc["rules"] = [r for r in doc["rules"] if r["kind"] != "superiority"] + [
        {
            "id": "x01_vs_x02",
            "kind": "superiority",
            "endpoint": "crc",
            "arms": ["x01", "x02"],
            "threshold": 0.975,
        }
    ]
    rng = np.random.default_rng(0)
    rows = []
    for i in range(12 * 15):
        arm = f"x{i % 12 + 1:02d}"
        resp = rng.choice(["CR", "CRi", "NR"], p=[0.3, 0.1, 0.6])
        rows.append(
            {
                "arm": arm,
                "best_response": resp,
                "response_on": "2026-02-15" if resp != "NR" else "",
                "mrd_negative": "true" if resp != "NR" else "",
                "last_contact_on": "2026-09-01",
            }
        )
    data = write_csv(tmp_path, rows_frame(*rows))
    res = run(
        "interim",
        "--config",
        write_config(tmp_path, doc),
        "--data",
        data,
        "--cutoff",
        CUTOFF,
        "--out",
        tmp_path / "look",
    )
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "look" / "recommendations.json").read_text())
    assert len(rep["arms"]) == 12
    assert all(a["endpoints"]["crc"]["n_evaluable"] == 15 for a in rep["arms"])
