"""Time-adjusted randomized comparisons (adaptive.drift) on constructed trials.

A calendar-time trend with a changed allocation (Simpson's paradox: both arms respond 20% in the
first period, 60% in the second, and the experimental arm gets 20% then 80% of the patients)
makes the pooled odds ratio far from 1 while the period-stratified one is 1: they differ. Without
the trend they agree. The Mantel-Haenszel estimate equals the textbook formula.
"""

from datetime import date, timedelta

import numpy as np
import pytest

from adaptive.drift import allocation_periods, compare_rows

START = date(2025, 4, 1)
BREAK = date(2025, 10, 1)
WINDOW = (START, date(2026, 4, 1))


def _rows(rate1, rate2, n=200):
    """Per period n patients, exact proportions: (arm, enrolled_on, response)."""
    rows = []
    for day0, rate, share_exp in ((START, rate1, 0.2), (BREAK + timedelta(days=1), rate2, 0.8)):
        for arm, k in (("exp", round(n * share_exp)), ("ref", round(n * (1 - share_exp)))):
            responders = round(k * rate)
            for i in range(k):
                rows.append((arm, day0 + timedelta(days=i % 150), int(i < responders)))
    return rows


def test_a_calendar_trend_with_a_changed_allocation_makes_pooled_and_stratified_differ():
    out = compare_rows(_rows(0.2, 0.6), ("exp", "ref"), WINDOW, [BREAK], "cmp", "crc")
    assert out["pooled"]["odds_ratio"] > 2.5  # confounded by time
    assert out["by_allocation_period"]["odds_ratio"] == pytest.approx(1.0, abs=1e-9)
    assert out["by_allocation_period"]["strata"] == 2
    assert out["agree"] is False and "differ" in out["sentence"]


def test_without_a_trend_pooled_and_stratified_agree():
    out = compare_rows(_rows(0.4, 0.4), ("exp", "ref"), WINDOW, [BREAK], "cmp", "crc")
    assert out["pooled"]["odds_ratio"] == pytest.approx(1.0, abs=1e-9)
    assert out["agree"] is True and "agree" in out["sentence"]


def test_mantel_haenszel_equals_the_textbook_formula():
    rng = np.random.default_rng(2)
    rows = [(("exp", "ref")[rng.integers(2)], START + timedelta(days=int(rng.integers(365))), int(rng.random() < 0.4))
            for _ in range(300)]  # fmt: skip
    out = compare_rows(rows, ("exp", "ref"), WINDOW, [BREAK], "cmp", "crc")
    num = den = 0.0
    for later in (False, True):
        sel = [r for r in rows if (r[1] > BREAK) == later]
        a = sum(1 for r in sel if r[0] == "exp" and r[2])
        b = sum(1 for r in sel if r[0] == "exp" and not r[2])
        c = sum(1 for r in sel if r[0] == "ref" and r[2])
        d = sum(1 for r in sel if r[0] == "ref" and not r[2])
        num += a * d / len(sel)
        den += b * c / len(sel)
    assert out["by_allocation_period"]["odds_ratio"] == pytest.approx(num / den, rel=1e-12)


def test_allocation_periods_are_the_looks_where_the_ratio_changed():
    hist = [(date(2025, 7, 1), [0.5, 0.5]), (date(2025, 10, 1), [0.35, 0.65]), (date(2026, 1, 1), [0.35, 0.65]),
            (date(2026, 4, 1), [0.2, 0.8])]  # fmt: skip
    assert allocation_periods(hist) == [date(2025, 10, 1), date(2026, 4, 1)]
    assert allocation_periods([]) == []
