"""Looks on given days (``looks.at_days``): the looks actually held, then the regular schedule.

The simulated design is the design that is run only if its looks are the looks that were made;
``at_days`` (written by ``adaptive simulate --looks-from-ledger``) puts the first looks on the days
of the ledger's cutoffs and the schedule goes on every ``every_days`` after the last of them.
"""

from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from adaptive.interim import look_schedule
from adaptive.scenario import load_scenario
from adaptive.simulate.engine import compile_spec, simulate_chunk
from tests.conftest import SCENARIOS, config_dict, design_from


def _look_days(looks: dict) -> np.ndarray:
    doc = config_dict()
    doc["looks"] = looks
    design = design_from(doc)
    spec = compile_spec(design, load_scenario(SCENARIOS / "realistic.yaml", design))
    res = simulate_chunk(spec, 2, np.arange(40))
    return res.look_day[:, 1:4]  # the first three interim looks of each trial (day 0 is the start)


def test_the_default_schedule_looks_every_91_days():
    assert np.array_equal(_look_days({}), np.tile([91.0, 182.0, 273.0], (40, 1)))


def test_given_days_first_then_every_every_days_after_the_last():
    assert np.array_equal(_look_days({"at_days": [578]}), np.tile([578.0, 669.0, 760.0], (40, 1)))
    assert np.array_equal(
        _look_days({"at_days": [100, 150], "every_days": 60}), np.tile([100.0, 150.0, 210.0], (40, 1))
    )


@pytest.mark.parametrize(
    "looks, message",
    [
        ({"at_days": [300, 200]}, "at_days must increase strictly"),
        ({"at_days": [300], "every_patients": 30}, "cannot be combined with every_patients"),
        ({"at_days": [300], "first_after_patients": 20}, "cannot be combined with every_patients"),
        ({"at_days": [2000]}, "after max_duration_days"),
        ({"at_days": [0]}, "greater than 0"),
    ],
)
def test_bad_look_days_are_config_errors(looks, message):
    doc = config_dict()
    doc["looks"] = looks
    with pytest.raises(Exception, match=message):
        design_from(doc)


def test_the_look_schedule_counts_the_given_days():
    """The bundled trial started 2025-04-01; its first look was held on day 578 (2026-10-31)."""
    doc = config_dict()
    table = SimpleNamespace(frame=pd.DataFrame({"enrolled_on": [date(2025, 4, 5), date(2026, 1, 5)]}))
    cutoff = date(2026, 10, 31)
    plain = look_schedule(design_from(doc), table, cutoff, made=1)
    assert plain["scheduled"] == 6 and plain["sentence"] is not None  # 6 planned every 91 days
    doc["looks"] = {"at_days": [578]}
    held = look_schedule(design_from(doc), table, cutoff, made=1)
    assert held["scheduled"] == 1 and held["sentence"] is None
    assert held["plan"] == "on days 578 from 2025-04-01, then every 91 days"
    later = look_schedule(design_from(doc), table, cutoff + timedelta(days=200), made=2)
    assert later["scheduled"] == 3  # day 778: 578, 669, 760


def test_the_simulation_report_names_the_looks_as_held():
    from adaptive.report.simreport import looks_lines

    lines = looks_lines({"at_days": [394, 578], "every_days": None})
    assert lines[0] == (
        "on days 394, 578 from the trial's start (looks as held), then every 91 days (the default) after the last"
    )
    assert looks_lines({})[0] == "every 91 days (the default)"
