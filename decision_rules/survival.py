"""Survival quantities and rules on posterior draws (never imports PyMC or :mod:`models`).

A survival fit's posterior (an :class:`xarray.Dataset`) holds, per draw, ``eta`` (dims ``arm``:
each arm's log hazard; under the model's proportional hazards the difference of two arms is
their log hazard ratio at every time) and ``median`` (dims ``arm``: median survival in days),
and usually ``survival`` (dims ``arm, horizon``). :class:`SurvivalPosterior` reads them; fake
posteriors built with numpy are as good as real ones, which is how the rules are tested.

Rules (built from the config's ``rules:`` by kind):

* ``survival_efficacy`` (:class:`MedianEfficacy`): ``P(median_k > reference_k) > threshold``,
  recommend graduate.
* ``survival_futility`` (:class:`MedianFutility`): ``P(median_k > reference_k) < threshold``,
  recommend drop for futility.
* ``hazard_ratio`` (:class:`HazardRatioSuperiority`): for two arms ``a, b``,
  ``P(HR_{a:b} < hr_margin)`` and ``P(HR_{b:a} < hr_margin)``; fires when the more probable of
  the two exceeds the threshold, recommend dropping the other arm.

``min_evaluable`` counts *events* per arm for these rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

if TYPE_CHECKING:  # posteriors arrive as xarray objects; the simulator never loads it
    import xarray as xr

from decision_rules.quantities import Estimate, indicator_estimate
from decision_rules.rules import Comparison, RuleResult, _ProbAboveRule, _ThresholdRule
from decision_rules.vocabulary import Action, RuleKind, fmt_rate

__all__ = [
    "SurvivalPosterior",
    "MedianEfficacy",
    "MedianFutility",
    "HazardRatioSuperiority",
    "HazardRatioSource",
    "SURVIVAL_RULE_KINDS",
]


class SurvivalPosterior:
    """Posterior of a survival endpoint across arms, seen through its draws.

    Parameters
    ----------
    posterior
        Dataset with ``eta`` and ``median`` of dims ``(chain, draw, arm)`` (string ``arm``
        coordinates), optionally ``survival`` with dims ``(chain, draw, arm, horizon)``.
    """

    def __init__(self, posterior: xr.Dataset):
        missing = [v for v in ("eta", "median") if v not in posterior]
        if missing:
            raise ValueError(f"a survival posterior needs variables eta and median; missing {missing}")
        for v in ("eta", "median"):
            if not {"chain", "draw", "arm"} <= set(posterior[v].dims):
                raise ValueError(f"{v} needs dims chain, draw, arm; got {posterior[v].dims}")
        self.posterior = posterior
        self.arms: tuple[str, ...] = tuple(str(a) for a in posterior["eta"].coords["arm"].values)

    def _draws(self, var: str, arm: str, **sel: Any) -> np.ndarray:
        if arm not in self.arms:
            raise KeyError(f"arm {arm!r} is not in the posterior (arms: {', '.join(self.arms)})")
        return self.posterior[var].sel(arm=arm, **sel).transpose("chain", "draw").values

    def median(self, arm: str) -> np.ndarray:
        """Draws of the median survival (days) of ``arm``, shape ``(chain, draw)``."""
        return self._draws("median", arm)

    def survival(self, arm: str, horizon: float) -> np.ndarray:
        """Draws of ``S(horizon)`` of ``arm``."""
        return self._draws("survival", arm, horizon=horizon)

    def log_hr(self, a: str, b: str) -> np.ndarray:
        """Draws of ``log HR_{a:b}`` (hazard of ``a`` over hazard of ``b``)."""
        return self._draws("eta", a) - self._draws("eta", b)

    def prob_median_above(self, arm: str, days: float) -> Estimate:
        """``P(median_arm > days)``."""
        return indicator_estimate(self.median(arm) > days)

    def survival_difference(self, a: str, b: str, horizon: float) -> np.ndarray:
        """Draws of ``S_a(horizon) - S_b(horizon)``."""
        return self.survival(a, horizon) - self.survival(b, horizon)

    def prob_survival_better(self, a: str, b: str, horizon: float) -> Estimate:
        """``P(S_a(horizon) > S_b(horizon))``."""
        return indicator_estimate(self.survival_difference(a, b, horizon) > 0)

    def prob_hr_below(self, a: str, b: str, bound: float = 1.0) -> Estimate:
        """``P(HR_{a:b} < bound)``."""
        return indicator_estimate(self.log_hr(a, b) < np.log(bound))

    def hr_quantiles(self, a: str, b: str, q: Sequence[float]) -> list[float]:
        """Posterior quantiles of ``HR_{a:b}``."""
        return [float(v) for v in np.exp(np.quantile(self.log_hr(a, b), q))]


class HazardRatioSource(Protocol):
    """What :class:`HazardRatioSuperiority` reads: a :class:`SurvivalPosterior`, or an exact twin.

    At a look the rule reads the quadrature posterior of its pair's concurrently randomized
    patients (``adaptive.survival_comparison.PairSurvivalPosterior``: MCSE 0, no draws).
    """

    arms: tuple[str, ...]

    def prob_hr_below(self, a: str, b: str, bound: float = 1.0) -> Estimate: ...

    def hr_quantiles(self, a: str, b: str, q: Sequence[float]) -> list[float]: ...


@dataclass(frozen=True)
class _MedianRule(_ProbAboveRule):
    """``P(median_k > reference_k) <comparison> threshold``; ``references`` are medians in days."""

    reference_name: str = "benchmark"

    family: ClassVar[str] = "survival"
    count_noun: ClassVar[str] = "events"

    def __post_init__(self) -> None:
        _ThresholdRule.__post_init__(self)
        for arm, ref in self.references.items():
            if not (ref is not None and ref > 0):
                raise ValueError(f"rule {self.id!r}: the reference median for {arm} must be > 0 days")

    def __str__(self) -> str:
        return (
            f"{self.kind} rule '{self.id}' (recommend {self.action}): "
            f"P(median {self.label} > {self.reference_name}) {self.comparison} {fmt_rate(self.threshold)}, "
            f"once at least {self.min_evaluable} events have occurred"
        )

    def quantity(self, arm: str) -> str:
        return f"P(median {self.label} > {self.references[arm]:g} days)"

    def estimate(  # type: ignore[override]  # a median rule reads a survival posterior
        self, posterior: SurvivalPosterior, arm: str, reference: float
    ) -> Estimate:
        return posterior.prob_median_above(arm, reference)


@dataclass(frozen=True)
class MedianEfficacy(_MedianRule):
    """Graduate an arm when ``P(median_k > reference_k) > threshold``."""

    kind: ClassVar[str] = RuleKind.SURVIVAL_EFFICACY
    action: ClassVar[str] = Action.GRADUATE
    comparison: ClassVar[Comparison] = ">"


@dataclass(frozen=True)
class MedianFutility(_MedianRule):
    """Drop an arm for futility when ``P(median_k > reference_k) < threshold``."""

    kind: ClassVar[str] = RuleKind.SURVIVAL_FUTILITY
    action: ClassVar[str] = Action.DROP_FUTILITY
    comparison: ClassVar[Comparison] = "<"


@dataclass(frozen=True)
class HazardRatioSuperiority(_ThresholdRule):
    """Two arms (a randomized pair) on a survival endpoint.

    Fires when ``P(HR_{a:b} < hr_margin)`` or ``P(HR_{b:a} < hr_margin)`` exceeds the threshold
    and recommends dropping the arm with the higher hazard. ``hr_margin = 1`` asks for any
    benefit; below 1, for a benefit at least that large. ``arms`` is ``(experimental,
    reference)``: the hazard ratio is always printed as experimental : reference, whichever arm
    the evidence favours (``P(HR > 1 / hr_margin)`` when the reference arm is better).
    """

    arms: tuple[str, str] = ("", "")
    hr_margin: float = 1.0

    kind: ClassVar[str] = RuleKind.HAZARD_RATIO
    action: ClassVar[str] = Action.DROP_INFERIOR
    comparison: ClassVar[Comparison] = ">"
    family: ClassVar[str] = "survival"
    count_noun: ClassVar[str] = "events"

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.arms) != 2 or self.arms[0] == self.arms[1]:
            raise ValueError(
                f"rule {self.id!r}: a hazard-ratio rule needs two different arms, got {self.arms}"
            )
        if not 0.0 < self.hr_margin <= 1.0:
            raise ValueError(f"rule {self.id!r}: hr_margin must lie in (0, 1], got {self.hr_margin}")

    def __str__(self) -> str:
        a, b = self.arms
        return (
            f"hazard_ratio rule '{self.id}' (recommend {self.action}): P({self.label} HR {a}:{b} < "
            f"{self.hr_margin:g}) or the reverse > {fmt_rate(self.threshold)}, once at least "
            f"{self.min_evaluable} events per arm have occurred"
        )

    def evaluate(
        self,
        posterior: HazardRatioSource,
        n_evaluable: Mapping[str, int],
        labels: Mapping[str, str] | None = None,
        *,
        source_note: str = "",
        extra: Mapping[str, object] | None = None,
    ) -> list[RuleResult]:
        """Evaluate the comparison; empty when either arm is absent from the posterior.

        ``n_evaluable``: events per arm (``min_events``); ``source_note`` (what data and model the
        posterior comes from) is added to the sentence, ``extra`` to the result's ``extra``.
        """
        a, b = self.arms
        if a not in posterior.arms or b not in posterior.arms:
            return []
        est_ab = posterior.prob_hr_below(a, b, self.hr_margin)
        est_ba = posterior.prob_hr_below(b, a, self.hr_margin)
        lo, med, hi = posterior.hr_quantiles(a, b, [0.025, 0.5, 0.975])
        more = {
            "hr_margin": self.hr_margin,
            f"prob_hr_{a}_{b}_below_margin": est_ab.prob,
            f"prob_hr_{b}_{a}_below_margin": est_ba.prob,
            "hr_arms": [a, b],
            "hr_median": med,
            "hr_ci95_low": lo,
            "hr_ci95_high": hi,
            **dict(extra or {}),
        }
        return self._comparison(
            (a, b, est_ab),
            (b, a, est_ba),
            lambda better, worse: (
                f"P({self.label} hazard ratio {a}:{b} < {self.hr_margin:g})"
                if better == a
                else f"P({self.label} hazard ratio {a}:{b} > {1.0 / self.hr_margin:g})"
            ),
            n_evaluable,
            labels,
            more,
            source_note,
        )


#: closed registry of survival rule kinds, chosen in the config by ``kind:``
SURVIVAL_RULE_KINDS: dict[str, type] = {
    RuleKind.SURVIVAL_EFFICACY: MedianEfficacy,
    RuleKind.SURVIVAL_FUTILITY: MedianFutility,
    RuleKind.HAZARD_RATIO: HazardRatioSuperiority,
}
