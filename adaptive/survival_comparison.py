"""A randomized pair's hazard ratio at a look: concurrently randomized patients, exact by quadrature.

A ``hazard_ratio`` rule (:class:`decision_rules.survival.HazardRatioSuperiority`) compares two
randomized arms, so it is decided comparatively, from randomized patients, as the binary
``superiority`` rule is (:func:`adaptive.interim.comparison_posterior`): the patients of its two
arms with ``randomized = true`` enrolled while both arms were open
(:func:`adaptive.randomization.concurrent_window`), nobody else.

Their posterior is the endpoint's configured piecewise-exponential model over the two arms alone
(:meth:`adaptive.config.Design.survival_prior`: each arm's prior centre, the level sd, the
smoothing sd, the shape groups restricted to the pair; arm levels independent, whatever the
endpoint's ``kind``: nothing is borrowed from other arms), computed by
:class:`models.survival_batch.SurvivalBatch`, the quadrature engine the simulator uses (checked
against PyMC fits within 0.01 in ``tests/test_survival_batch.py``). It is exact up to
quadrature (no Monte Carlo error), needs no compile, and is the same function of the same
counts as the simulated decision. The hazard ratio is that of the continuous part (for EFS, the
treatment failures on the point mass do not enter it, as in :class:`SurvivalPosterior`).

:class:`PairSurvivalPosterior` exposes what the rule reads (``arms``, ``prob_hr_below``,
``hr_quantiles``); quantiles invert ``prob_hr_below`` by Brent's method on ``log HR``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import numpy as np

from decision_rules.quantities import Estimate
from models.survival_batch import SurvivalBatch

if TYPE_CHECKING:  # the simulator imports the batch builders only: no data, PyMC or pandas there
    from adaptive.config import Design
    from adaptive.data import PatientTable
    from adaptive.derive import DerivedData

__all__ = ["PairSurvivalPosterior", "PairSurvival", "survival_batch", "pair_survival_batch", "pair_survival"]

#: the bracket of ``log HR`` searched for a quantile (HR from 1e-6 to 1e6), and Brent's tolerance
LOG_HR_BRACKET = (-np.log(1e6), np.log(1e6))
LOG_HR_XTOL = 1e-10


class PairSurvivalPosterior:
    """Two arms' survival posterior by quadrature, read as a hazard-ratio rule reads a posterior.

    Parameters
    ----------
    arms
        The two arm ids, in the order of the batch's arms.
    batch
        The two-arm model (:func:`pair_survival_batch`).
    events, exposure
        ``(2, J)`` events and days at risk per arm and interval (continuous part).
    """

    method = "exact (quadrature: models.survival_batch.SurvivalBatch)"

    def __init__(self, arms: Sequence[str], batch: SurvivalBatch, events: np.ndarray, exposure: np.ndarray):
        self.arms: tuple[str, ...] = tuple(arms)
        if len(self.arms) != 2 or len(batch.level_means) != 2:
            raise ValueError(f"a pair posterior needs two arms, got {self.arms}")
        d = np.asarray(events, float)[None]
        e = np.asarray(exposure, float)[None]
        self._post = batch.posterior(d, e)

    def _index(self, arm: str) -> int:
        if arm not in self.arms:
            raise KeyError(f"arm {arm!r} is not in the pair ({', '.join(self.arms)})")
        return self.arms.index(arm)

    def _prob(self, a: int, b: int, log_bound: float) -> float:
        return float(self._post.prob_hr_below(a, b, float(np.exp(log_bound)))[0])

    def prob_hr_below(self, a: str, b: str, bound: float = 1.0) -> Estimate:
        """``P(HR_{a:b} < bound)``, exact up to quadrature (MCSE 0, no draws)."""
        return Estimate(self._prob(self._index(a), self._index(b), float(np.log(bound))), 0.0, 0)

    def hr_quantiles(self, a: str, b: str, q: Sequence[float]) -> list[float]:
        """Posterior quantiles of ``HR_{a:b}``: ``P(HR_{a:b} < r) = q`` solved for ``log r`` (Brent)."""
        from scipy.optimize import brentq

        i, k = self._index(a), self._index(b)
        lo, hi = LOG_HR_BRACKET
        p_lo, p_hi = self._prob(i, k, lo), self._prob(i, k, hi)
        out = []
        for level in q:
            if not 0.0 < level < 1.0:
                raise ValueError(f"a quantile level lies in (0, 1), got {level}")
            if level <= p_lo:
                out.append(float(np.exp(lo)))
            elif level >= p_hi:
                out.append(float(np.exp(hi)))
            else:
                x = brentq(lambda x, level=level: self._prob(i, k, x) - level, lo, hi, xtol=LOG_HR_XTOL)
                out.append(float(np.exp(x)))
        return out


def survival_batch(
    design: Design,
    endpoint: str,
    arms: Sequence[str],
    level_sd: float | None = None,
    point_mass_days: float | None = None,
) -> SurvivalBatch:
    """The endpoint's configured model over ``arms`` (in that order), arm levels independent.

    Prior centres and shape groups from :meth:`Design.survival_prior` restricted to ``arms``; the
    level sd (``level_sd``: another one, the robustness panel's ``survival_level_sd``) and the
    smoothing sd of the endpoint's model; a point mass on ``point_mass_days`` (ELN EFS; none for
    a hazard ratio, which is of the continuous part). The one builder of the quadrature model:
    the simulator's endpoints (:mod:`adaptive.simulate.engine`), the robustness panel and the
    randomized pair here.
    """
    cfg = design.survival.endpoints[endpoint].model
    medians, groups = design.survival_prior(endpoint, list(arms))
    return SurvivalBatch(
        tuple(float(c) for c in design.survival.cut_points_days),
        np.log(np.log(2.0) / np.asarray(medians, float)),
        float(cfg.level.sd if level_sd is None else level_sd),
        float(cfg.smoothing_sd),
        groups=groups,
        point_mass_days=point_mass_days,
    )


def pair_survival_batch(
    design: Design, endpoint: str, arms: Sequence[str], level_sd: float | None = None
) -> SurvivalBatch:
    """The model of a randomized pair's hazard ratio: :func:`survival_batch` over ``arms``, no point mass."""
    return survival_batch(design, endpoint, arms, level_sd)


@dataclass(frozen=True)
class PairSurvival:
    """What a hazard-ratio rule reads at a look: the posterior and the population it comes from.

    ``window``: the dates both arms were open (``None``: never together, or no patient table);
    ``concurrent``: whether the population is the concurrently randomized patients (a look
    without a patient table has all patients of the two arms); ``events``, ``patients``: per
    arm, in the population (events count point-mass events, as ``min_events`` does);
    ``excluded``: patients of the two arms in the endpoint's population left out, by reason.
    """

    posterior: PairSurvivalPosterior
    window: tuple[date, date] | None
    concurrent: bool
    events: dict[str, int]
    patients: dict[str, int]
    excluded: dict[str, int]


def pair_survival(
    design: Design,
    table: PatientTable | None,
    derived: DerivedData,
    endpoint: str,
    arms: Sequence[str],
    level_sd: float | None = None,
) -> PairSurvival:
    """The posterior of ``HR`` between two arms on the concurrently randomized patients (module docstring).

    Without a patient table, all patients of the two arms in the endpoint's population. The
    posterior's arms are in the design's order, as in the simulator (the same numbers, bit for bit).
    """
    from adaptive.randomization import concurrent_ids, concurrent_window
    from models.survival import SurvivalData

    arms = tuple(sorted(arms, key=design.arm_ids.index))
    f = derived.survival.times[endpoint]
    f = f[f["arm"].isin(arms)]
    excluded: dict[str, int] = {}
    window = None
    if table is not None:
        window = concurrent_window(design, table, arms, derived.cutoff)
        ids = set() if window is None else concurrent_ids(table, window)
        rand = table.frame.set_index("subject_id")["randomized"]
        is_rand = np.array([rand.get(s) is True for s in f["subject_id"]], bool)
        keep = f["subject_id"].isin(ids).to_numpy()
        excluded = {
            "not_randomized": int((~is_rand).sum()),
            "outside_window": int((is_rand & ~keep).sum()),
        }
        f = f[keep]
    data = SurvivalData.from_times(  # the continuous part's events and days at risk per arm
        arms,
        design.survival.cut_points_days,
        f["arm"].to_numpy(),
        f["time"].to_numpy(dtype=float),
        f["event"].to_numpy(dtype=bool),
        f["day0"].to_numpy(dtype=bool),
    )
    post = PairSurvivalPosterior(
        arms, pair_survival_batch(design, endpoint, arms, level_sd), data.events, data.exposure
    )
    return PairSurvival(
        posterior=post,
        window=window,
        concurrent=table is not None,
        events={a: int(f.loc[f["arm"] == a, "event"].sum()) for a in arms},
        patients={a: int((f["arm"] == a).sum()) for a in arms},
        excluded=excluded,
    )
