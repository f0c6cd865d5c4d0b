"""The CLI as a statistician meets it (issue 17): sampler overrides on the command line, progress
messages on a terminal only, and narrow terminals that wrap instead of cutting."""

from __future__ import annotations

import contextlib
import json
import logging
import re

import arviz as az
import pytest
from click.testing import CliRunner
from rich.console import Console

import adaptive.cli as cli
from adaptive import progress
from adaptive.config import parse_config
from adaptive.exceptions import ConfigError
from adaptive.ledger import read_looks
from tests.conftest import CONFIG, EXAMPLE

CUTOFF = "2026-10-31"


def run(*args, **kwargs):
    return CliRunner().invoke(cli.main, [str(a) for a in args], catch_exceptions=False, **kwargs)


def interim(cfg, out, *extra):
    return run("interim", "--config", cfg, "--data", EXAMPLE, "--cutoff", CUTOFF, "--out", out, *extra)


@pytest.fixture(scope="module")
def two_looks(fast_config, tmp_path_factory):
    """Look 1 with the config's sampler, look 2 (forced) with --draws 300 on the same inputs."""
    looks = tmp_path_factory.mktemp("looks")
    first = interim(fast_config, looks / "l1")
    assert first.exit_code == 0, first.output
    refused = interim(fast_config, looks / "l2", "--draws", 300)
    forced = interim(fast_config, looks / "l2", "--draws", 300, "--force")
    assert forced.exit_code == 0, forced.output
    again = interim(fast_config, looks / "l3", "--draws", 300)
    return looks, first, refused, again


# ----------------------------------------------------------------------------- sampler overrides
def test_draws_override_is_recorded_and_keeps_the_config(two_looks):
    looks, *_ = two_looks
    one = json.loads((looks / "l1" / "recommendations.json").read_text())
    two = json.loads((looks / "l2" / "recommendations.json").read_text())
    assert one["sampler_overrides"] == {} and two["sampler_overrides"] == {"draws": 300}
    # the config, its hash and its recorded sampler section are those of the file
    assert two["config_sha256"] == one["config_sha256"]
    assert two["config"]["sampler"]["draws"] == one["config"]["sampler"]["draws"] == 250
    # ... but the fit used the override: 2 chains x 300 draws instead of 2 x 250
    for look, draws in (("l1", 250), ("l2", 300)):
        post = az.from_netcdf(looks / look / "posterior.nc").posterior
        assert (post.sizes["chain"], post.sizes["draw"]) == (2, draws)
    assert list(two).index("sampler_overrides") == list(two).index("seed") + 1


def test_an_override_is_part_of_the_looks_identity(two_looks):
    looks, _, refused, again = two_looks
    # same data, config, cutoff and seed but other sampler settings: refused unless forced
    assert refused.exit_code == 2
    assert "made with the config's sampler settings, not --draws 300" in refused.output
    assert "--force" in refused.output and "Traceback" not in refused.output
    # the same override again finds look 2: nothing is written
    assert again.exit_code == 0 and "Nothing to do" in again.output and "look 2" in again.output
    assert not (looks / "l3").exists()
    recs = read_looks(looks / "ledger.sqlite")
    assert [(r.look, r.forced, r.sampler_overrides) for r in recs] == [
        (1, False, {}),
        (2, True, {"draws": 300}),
    ]


def test_history_shows_the_overrides(two_looks):
    looks, *_ = two_looks
    hist = json.loads(run("history", "--ledger", looks / "ledger.sqlite", "--json").output)
    assert [lk["sampler_overrides"] for lk in hist["looks"]] == [{}, {"draws": 300}]
    text = run("history", "--ledger", looks / "ledger.sqlite").output
    assert "20260101 --draws 300" in text


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--chains", 1), "1 is not in the range x>=2"),
        (("--draws", 0), "0 is not in the range x>=1"),
        (("--draws", 10**6), "--draws: the value should be less than or equal to 100000"),
    ],
)
def test_bad_overrides_are_usage_errors(fast_config, tmp_path, args, said):
    res = interim(fast_config, tmp_path / "l", *args)
    assert res.exit_code == 2 and said in res.output and "Traceback" not in res.output
    assert not (tmp_path / "l").exists() and not (tmp_path / "ledger.sqlite").exists()


def test_with_sampler_refuses_settings_that_are_not_overridable():
    design = parse_config(CONFIG.read_text(), "rr_aml.yaml")
    with pytest.raises(ConfigError, match="seed cannot be overridden"):
        design.with_sampler({"seed": 3})
    d2 = design.with_sampler({"tune": 50}).with_sampler({"draws": 70})
    assert (d2.sampler.draws, d2.sampler.tune, d2.sampler.chains) == (70, 50, design.sampler.chains)
    assert d2.sampler_overrides == {"tune": 50, "draws": 70} and d2.sha256 == design.sha256
    assert d2.as_dict() == design.as_dict()


def test_monte_carlo_advice_names_the_switch_and_stays_out_of_the_report(monkeypatch):
    rec = Console(record=True, width=200)
    monkeypatch.setattr(cli, "console", rec)
    report = {
        "recommendations": [{"arm": "arm6", "mc_uncertain": True}, {"arm": "arm1", "mc_uncertain": False}],
        "sampler_overrides": {},
        "config": {"sampler": {"draws": 2000}},
    }
    cli._more_draws_advice(report)
    text = rec.export_text()
    assert "for arm6 rest on" in text and "--draws 8000 --force" in text and "arm1" not in text
    cli._more_draws_advice(report | {"sampler_overrides": {"draws": 8000}})
    assert "--draws 32000" in rec.export_text()
    before = rec.export_text()
    cli._more_draws_advice({"recommendations": [{"arm": "arm1", "mc_uncertain": False}]})
    assert rec.export_text() == before


# ----------------------------------------------------------------------------- progress
class FakeConsole:
    """What :func:`progress.shown` needs of a rich console: ``is_terminal`` and ``status``."""

    def __init__(self, is_terminal: bool):
        self.is_terminal = is_terminal
        self.shown: list[str] = []

    @contextlib.contextmanager
    def status(self, first):
        self.shown.append(first)
        yield self

    def update(self, text):
        self.shown.append(text)


def test_progress_is_shown_on_a_terminal_only():
    term = FakeConsole(is_terminal=True)
    with progress.shown(term, first="starting the look"):
        progress.step("deriving the endpoints")
        logging.getLogger("models.fit").info("fitting %s: %s", "orr", "IndependentBetaBinomial")
        logging.getLogger("models.fit").debug("not progress")
    assert term.shown == [
        "starting the look",
        "deriving the endpoints",
        "fitting orr: IndependentBetaBinomial",
    ]
    # the handlers and levels are put back
    progress.step("after the block")
    assert term.shown[-1] == "fitting orr: IndependentBetaBinomial"
    assert all(not logging.getLogger(n).handlers for n in progress.LOGGERS)
    for console, quiet in ((FakeConsole(is_terminal=False), False), (FakeConsole(is_terminal=True), True)):
        with progress.shown(console, quiet=quiet):
            progress.step("nothing shown")
        assert console.shown == []


def test_a_look_says_what_it_is_doing_but_not_into_a_pipe(fast_config, tmp_path, caplog):
    with (
        caplog.at_level(logging.INFO, logger="adaptive.progress"),
        caplog.at_level(logging.INFO, "models.fit"),
    ):
        res = CliRunner().invoke(
            cli.main,
            ["interim", "--config", str(fast_config), "--data", str(EXAMPLE), "--cutoff", CUTOFF,
             "--out", str(tmp_path / "l"), "--ledger", str(tmp_path / "ledger.sqlite")],
            catch_exceptions=False,
        )  # fmt: skip
    assert res.exit_code == 0, res.output
    said = [r.getMessage() for r in caplog.records]
    assert said[0] == "reading rr_aml_synthetic.csv"
    assert f"deriving the endpoints as of {CUTOFF}" in said
    assert any(m.startswith("fitting 5 endpoint model(s), 2 chains x 250 draws") for m in said)
    assert any(re.fullmatch(r"fitting crc: IndependentBetaBinomial", m) for m in said)
    assert said[-1] == "writing l"
    # CliRunner's output is not a terminal: no progress text among the results
    assert not any(m in res.output for m in said)


@pytest.mark.parametrize("command", ["interim", "memo", "simulate", "calibrate"])
def test_long_commands_take_quiet(command):
    assert "--quiet" in run(command, "--help").output


# ----------------------------------------------------------------------------- narrow terminals
@pytest.fixture(scope="module")
def look_report(two_looks) -> dict:
    looks, *_ = two_looks
    return json.loads((looks / "l1" / "recommendations.json").read_text())


@pytest.mark.parametrize("width", [60, 80, 100, 140])
def test_a_narrow_terminal_wraps_the_look_instead_of_cutting_it(look_report, monkeypatch, width):
    rec = Console(record=True, width=width)
    monkeypatch.setattr(cli, "console", rec)
    cli.print_look(look_report)
    text = rec.export_text()
    assert "…" not in text
    # the per-arm part fits the width; the sentences after it are soft-wrapped by the terminal
    lines = text.splitlines()
    arms_part = lines[: next(i for i, line in enumerate(lines) if line.startswith("comparison:"))]
    assert max(len(line) for line in arms_part) <= width
    flat = " ".join(" ".join(arms_part).split())
    for arm in look_report["arms"]:
        assert f"{arm['arm']} {arm['label']}" in flat
    recs = [r for r in look_report["recommendations"] if r.get("arm")]
    for r in recs:
        assert f"Recommendation: {r['action']}" in flat
    arm6 = next(a for a in look_report["arms"] if a["arm"] == "arm6")
    assert (
        f"CRc y/n: {arm6['endpoints']['crc']['responders']}/{arm6['endpoints']['crc']['n_evaluable']}" in flat
    )
    # the harm limit the probability refers to is named beside it
    assert f"(limit {100 * arm6['endpoints']['mortality_30d']['limit_rate']:.1f}%)" in flat


def test_a_wide_terminal_gets_the_table(look_report, monkeypatch):
    rec = Console(record=True, width=260)
    monkeypatch.setattr(cli, "console", rec)
    cli.print_look(look_report)
    text = rec.export_text()
    assert "┃ Arm" in text and "Recommendation" in text and "…" not in text


def test_history_in_a_narrow_terminal_keeps_every_date(two_looks, monkeypatch):
    looks, *_ = two_looks
    rec = Console(record=True, width=80)
    monkeypatch.setattr(cli, "console", rec)
    assert run("history", "--ledger", looks / "ledger.sqlite").exit_code == 0
    text = rec.export_text()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    assert text.count(f"Cutoff: {CUTOFF}") == 2 + 2 * 8  # two looks, and eight arms at each look
    assert "Arms, look by look" in text and "Look: 2;" in text


def test_show_table_blocks_keep_every_cell(monkeypatch):
    rec = Console(record=True, width=40)
    monkeypatch.setattr(cli, "console", rec)
    cli.show_table("T", ("Name", "Long value", "Date"), [("row one", "x" * 50, "2026-10-31")])
    lines = rec.export_text().splitlines()
    assert lines[:2] == ["T", "row one"]
    assert "x" * 50 in "".join(line.strip() for line in lines) and "Date:" in lines[3]
    assert all(line.startswith("  ") for line in lines[2:])
