"""Decision rules are values.

A rule is a frozen object built once from the config. It prints itself in words, evaluates on a
posterior (anything with the :class:`~decision_rules.quantities.DrawsPosterior` interface: draws
from MCMC, or an exact posterior in the simulator) and returns one :class:`RuleResult` per arm (or
per comparison): the probability, its Monte Carlo standard error, the threshold, whether it fired,
the signed margin to the boundary and a sentence a DSMB member can read, e.g.

    "P(CRc > 35%) is 98.2% (MCSE 0.2%) for arm3 (DAV), above the required 97.5%: the efficacy
    rule 'graduate_crc' fires (recommend: graduate)."

A rule never fires before its minimum number of evaluable patients is reached; it then reports
``evaluated = False`` and says why. The probability is still computed and reported, so the DSMB
can watch it move.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import ClassVar, Literal, TypeVar

import numpy as np
import numpy.typing as npt

from decision_rules.predictive import PredictiveSource, predictive_prob_success_beta
from decision_rules.quantities import Estimate, Posterior
from decision_rules.vocabulary import HARM_TIERS, Action, RuleKind, fmt_prob, fmt_rate

__all__ = [
    "RuleResult",
    "Efficacy",
    "Futility",
    "Harm",
    "HarmTier",
    "TIER_CLASSES",
    "Superiority",
    "PredictiveFutility",
    "PredictiveEfficacy",
    "PREDICTIVE_KINDS",
    "RULE_KINDS",
    "fmt_estimate",
    "rule_arms",
]

Comparison = Literal[">", "<"]
#: a probability, or an array of them (vectorized over trials)
F = TypeVar("F", float, np.ndarray)


def rule_arms(rule: object) -> tuple[str, ...]:
    """The arms a rule decides: its compared ``arms``, else the arms of its (success) references."""
    arms = getattr(rule, "arms", None) or getattr(rule, "references", None)
    return tuple(arms or getattr(rule, "success_references", None) or ())


def fmt_estimate(est: Estimate) -> tuple[str, str]:
    """``(probability, its Monte Carlo note)`` of an estimate, for sentences.

    Exact estimates (no draws, MCSE 0) print as exact; all or none of the draws print as
    ``">99.9%"`` / ``"<0.1%"`` with ``"all of 8000 draws"``; otherwise one decimal with the MCSE.
    """
    exact = est.mcse == 0.0 and not est.n_draws
    shown = fmt_prob(est.prob, exact=exact)
    if exact:
        return shown, "exact"
    if est.mcse == 0.0:
        which = "all" if est.prob >= 1.0 else "none"
        return shown, f"{which} of {est.n_draws} draws"
    return shown, f"MCSE {fmt_rate(est.mcse, 2)}"


@dataclass(frozen=True)
class RuleResult:
    """The outcome of one rule for one arm (or one comparison of arms)."""

    rule: str
    kind: str
    action: str
    endpoint: str
    arms: tuple[str, ...]
    quantity: str
    prob: float
    mcse: float
    threshold: float
    comparison: Comparison
    margin: float
    n_evaluable: tuple[int, ...]
    min_evaluable: int
    evaluated: bool
    fired: bool
    mc_uncertain: bool
    sentence: str
    extra: Mapping[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain-JSON form (tuples become lists)."""
        d = asdict(self)
        d["arms"] = list(self.arms)
        d["n_evaluable"] = list(self.n_evaluable)
        d["extra"] = dict(self.extra)
        return d


def _name(arm: str, labels: Mapping[str, str] | None) -> str:
    if labels and labels.get(arm) and labels[arm] != arm:
        return f"{arm} ({labels[arm]})"
    return arm


@dataclass(frozen=True)
class _ThresholdRule:
    """Shared machinery: compare a probability with a threshold, respect a minimum sample size."""

    id: str
    endpoint: str
    threshold: float
    min_evaluable: int = 0
    endpoint_label: str = ""

    kind: ClassVar[str] = ""
    action: ClassVar[str] = ""
    comparison: ClassVar[Comparison] = ">"
    #: how many MCSEs from the threshold a probability must be to count as Monte Carlo-certain
    mc_z: ClassVar[float] = 2.0
    #: which posterior the rule reads ("binary": rates ``p``; "survival": see decision_rules.survival)
    family: ClassVar[str] = "binary"
    #: what ``min_evaluable`` counts, for sentences ("evaluable" patients, or "events")
    count_noun: ClassVar[str] = "evaluable"

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(
                f"rule {self.id!r}: threshold must lie strictly between 0 and 1, got {self.threshold}"
            )
        if self.min_evaluable < 0:
            raise ValueError(f"rule {self.id!r}: min_evaluable must be >= 0, got {self.min_evaluable}")

    @property
    def label(self) -> str:
        return self.endpoint_label or self.endpoint

    def margin(self, prob: F) -> F:
        """Signed distance to the boundary: positive means the rule's condition holds."""
        return prob - self.threshold if self.comparison == ">" else self.threshold - prob

    def decide_arrays(self, prob: npt.ArrayLike, n_evaluable: npt.ArrayLike) -> np.ndarray:
        """Whether the rule fires, vectorized: ``prob`` and ``n_evaluable`` broadcast together.

        The single implementation of the firing condition: a minimum number of evaluable
        patients and a strictly positive margin. (The simulator calls this on exact posterior
        probabilities of many virtual trials.)
        """
        prob = np.asarray(prob, float)
        return (np.asarray(n_evaluable) >= self.min_evaluable) & (self.margin(prob) > 0)

    def decide(self, prob: float, n_evaluable: int | Sequence[int]) -> bool:
        """Whether the rule fires for this probability and these sample sizes."""
        ns = (n_evaluable,) if isinstance(n_evaluable, int) else tuple(n_evaluable)
        return bool(self.decide_arrays(prob, min(ns)))

    def _result(
        self,
        *,
        arms: tuple[str, ...],
        quantity: str,
        est: Estimate,
        ns: tuple[int, ...],
        subject: str,
        extra: Mapping[str, object] | None = None,
    ) -> RuleResult:
        margin = float(self.margin(est.prob))
        evaluated = min(ns) >= self.min_evaluable
        fired = bool(self.decide_arrays(est.prob, min(ns)))
        mc_uncertain = abs(margin) < self.mc_z * est.mcse
        where = "above" if est.prob > self.threshold else "below"
        if est.prob == self.threshold:
            where = "equal to"
        shown, mc = fmt_estimate(est)
        head = (
            f"{quantity} is {shown} ({mc}) for {subject}, "
            f"{where} the {'required' if self.comparison == '>' else 'limit of'} "
            f"{fmt_rate(self.threshold)}"
        )
        if not evaluated:
            sentence = (
                f"{head}; the {self.kind} rule '{self.id}' is not evaluated yet: "
                f"{'/'.join(str(n) for n in ns)} {self.count_noun} for {self.label}, "
                f"it needs at least {self.min_evaluable}{' per arm' if len(ns) > 1 else ''}."
            )
        elif fired:
            sentence = f"{head}: the {self.kind} rule '{self.id}' fires (recommend: {self.action})."
        else:
            sentence = f"{head}: the {self.kind} rule '{self.id}' does not fire."
        if evaluated and mc_uncertain:
            sentence += (
                f" The probability lies within {self.mc_z:g} Monte Carlo standard errors of the "
                "threshold: this fit does not settle on which side of it the probability lies."
            )
        return RuleResult(
            rule=self.id,
            kind=self.kind,
            action=self.action,
            endpoint=self.endpoint,
            arms=arms,
            quantity=quantity,
            prob=est.prob,
            mcse=est.mcse,
            threshold=self.threshold,
            comparison=self.comparison,
            margin=margin,
            n_evaluable=ns,
            min_evaluable=self.min_evaluable,
            evaluated=evaluated,
            fired=fired,
            mc_uncertain=mc_uncertain,
            sentence=sentence,
            extra=dict(extra or {}),
        )

    def _comparison(
        self,
        ab: tuple[str, str, Estimate],
        ba: tuple[str, str, Estimate],
        quantity: Callable[[str, str], str],
        n_evaluable: Mapping[str, int],
        labels: Mapping[str, str] | None,
        extra: Mapping[str, object],
        source_note: str = "",
    ) -> list[RuleResult]:
        """A two-arm comparison's result, the more probable direction first.

        ``ab`` and ``ba``: ``(better, worse, P(better beats worse))`` of each direction;
        ``quantity`` of ``(better, worse)``; ``extra`` follows ``better`` and ``inferior`` in the
        result's ``extra``; ``source_note`` (the data and model) ends the sentence.
        """
        better, worse, est = ba if ba[2].prob > ab[2].prob else ab
        res = self._result(
            arms=(better, worse),
            quantity=quantity(better, worse),
            est=est,
            ns=(int(n_evaluable.get(better, 0)), int(n_evaluable.get(worse, 0))),
            subject=f"{_name(better, labels)} versus {_name(worse, labels)}",
            extra={"better": better, "inferior": worse, **extra},
        )
        if source_note:
            res = replace(res, sentence=f"{res.sentence} {source_note}")
        return [res]


@dataclass(frozen=True)
class _ProbAboveRule(_ThresholdRule):
    """``P(p_k > reference_k) <comparison> threshold`` for each arm ``k``.

    Parameters
    ----------
    references
        Arm -> reference rate (the arm's null, target or limit rate); arms not listed are skipped.
    reference_name
        Which rate the references are (``"null_rate"``, ``"target_rate"``, ``"limit_rate"``,
        ``"value"``), for the printout.
    """

    references: Mapping[str, float] = field(default_factory=dict)
    reference_name: str = "reference"

    def __post_init__(self) -> None:
        super().__post_init__()
        for arm, ref in self.references.items():
            if not 0.0 < ref < 1.0:
                raise ValueError(f"rule {self.id!r}: reference rate for {arm} must be in (0, 1)")

    def __str__(self) -> str:
        return (
            f"{self.kind} rule '{self.id}' (recommend {self.action}): "
            f"P({self.label} > {self.reference_name}) {self.comparison} {fmt_rate(self.threshold)}, "
            f"once at least {self.min_evaluable} patients are evaluable"
        )

    def quantity(self, arm: str) -> str:
        return f"P({self.label} > {fmt_rate(self.references[arm])})"

    def estimate(self, posterior: Posterior, arm: str, reference: float) -> Estimate:
        """The probability the rule compares with its threshold (here ``P(p_arm > reference)``)."""
        return posterior.prob_above(arm, reference)

    def evaluate(
        self,
        posterior: Posterior,
        n_evaluable: Mapping[str, int],
        labels: Mapping[str, str] | None = None,
    ) -> list[RuleResult]:
        """Evaluate for every arm that has a reference and is in the posterior."""
        out = []
        for arm, ref in self.references.items():
            if arm not in posterior.arms:
                continue
            est = self.estimate(posterior, arm, ref)
            out.append(
                self._result(
                    arms=(arm,),
                    quantity=self.quantity(arm),
                    est=est,
                    ns=(int(n_evaluable.get(arm, 0)),),
                    subject=_name(arm, labels),
                    extra={"reference": ref, "reference_name": self.reference_name},
                )
            )
        return out


@dataclass(frozen=True)
class Efficacy(_ProbAboveRule):
    """Graduate an arm when ``P(p_k > reference_k) > threshold``."""

    kind: ClassVar[str] = RuleKind.EFFICACY
    action: ClassVar[str] = Action.GRADUATE
    comparison: ClassVar[Comparison] = ">"


@dataclass(frozen=True)
class Futility(_ProbAboveRule):
    """Drop an arm for futility when ``P(p_k > reference_k) < threshold``."""

    kind: ClassVar[str] = RuleKind.FUTILITY
    action: ClassVar[str] = Action.DROP_FUTILITY
    comparison: ClassVar[Comparison] = "<"


@dataclass(frozen=True)
class HarmTier(_ProbAboveRule):
    """One tier of a harm rule: ``P(event rate_k > reference_k) > threshold`` recommends ``action``."""

    kind: ClassVar[str] = RuleKind.HARM
    action: ClassVar[str] = Action.DROP_HARM
    comparison: ClassVar[Comparison] = ">"


@dataclass(frozen=True)
class FlagTier(HarmTier):
    """A safety signal for the DSMB to review (enrolment continues)."""

    action: ClassVar[str] = Action.FLAG


@dataclass(frozen=True)
class SuspendTier(HarmTier):
    """Pause enrolment pending a safety review."""

    action: ClassVar[str] = Action.SUSPEND_ENROLMENT


@dataclass(frozen=True)
class DropHarmTier(HarmTier):
    """Close the arm for harm."""

    action: ClassVar[str] = Action.DROP_HARM


#: tier action -> tier class, least to most severe
TIER_CLASSES: dict[str, type[HarmTier]] = {
    Action.FLAG: FlagTier,
    Action.SUSPEND_ENROLMENT: SuspendTier,
    Action.DROP_HARM: DropHarmTier,
}


@dataclass(frozen=True)
class Harm:
    """Tiered harm monitoring of an event rate (e.g. 30-day deaths).

    Each tier (:class:`HarmTier`: ``flag``, ``suspend_enrolment``, ``drop_harm``) is a rule
    ``P(rate_k > reference_k) > threshold`` of its own; the result for an arm reports every tier
    and recommends the most severe tier that fires. A harm rule with one ``drop_harm`` tier is the
    classic "drop for harm when ``P(rate > limit) > threshold``".
    """

    id: str
    endpoint: str
    tiers: tuple[HarmTier, ...]
    min_evaluable: int = 0
    endpoint_label: str = ""

    kind: ClassVar[str] = RuleKind.HARM
    family: ClassVar[str] = "binary"
    count_noun: ClassVar[str] = "evaluable"

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ValueError(f"rule {self.id!r}: a harm rule needs at least one tier")
        order = [HARM_TIERS.index(t.action) for t in self.tiers]
        if order != sorted(set(order)):
            raise ValueError(f"rule {self.id!r}: tiers must be distinct and ordered least to most severe")

    @property
    def label(self) -> str:
        return self.endpoint_label or self.endpoint

    @property
    def action(self) -> str:
        """The most severe tier's action."""
        return self.tiers[-1].action

    @property
    def threshold(self) -> float:
        """The most severe tier's threshold."""
        return self.tiers[-1].threshold

    @property
    def references(self) -> Mapping[str, float]:
        """The most severe tier's references (every tier covers the same arms)."""
        return self.tiers[-1].references

    @property
    def reference_name(self) -> str:
        return self.tiers[-1].reference_name

    def __str__(self) -> str:
        parts = "; ".join(
            f"{t.action} if P({self.label} > {t.reference_name}) > {fmt_rate(t.threshold)}"
            for t in self.tiers
        )
        return (
            f"harm rule '{self.id}' (tiers, least to most severe: {parts}), once at least "
            f"{self.min_evaluable} patients are evaluable"
        )

    def evaluate(
        self,
        posterior: Posterior,
        n_evaluable: Mapping[str, int],
        labels: Mapping[str, str] | None = None,
    ) -> list[RuleResult]:
        """One result per arm: every tier's probability, the most severe tier that fires."""
        per_tier = [{r.arms[0]: r for r in t.evaluate(posterior, n_evaluable, labels)} for t in self.tiers]
        out = []
        for arm in per_tier[-1]:
            results = [pt[arm] for pt in per_tier]
            if len(results) == 1:
                out.append(results[0])
                continue
            fired = [r for r in results if r.fired]
            chosen = fired[-1] if fired else results[0]
            tiers = [
                {
                    "action": r.action,
                    "reference": r.extra["reference"],
                    "reference_name": r.extra["reference_name"],
                    "quantity": r.quantity,
                    "threshold": r.threshold,
                    "prob": r.prob,
                    "mcse": r.mcse,
                    "fired": r.fired,
                    "mc_uncertain": r.mc_uncertain,
                }
                for r in results
            ]
            words = "; ".join(
                f"{r.action} {r.quantity} {fmt_estimate(Estimate(r.prob, r.mcse, 1))[0]} "
                f"({'>' if r.prob > r.threshold else '<='} {fmt_rate(r.threshold)}"
                f"{': fires' if r.fired else ''})"
                for r in results
            )
            subject = _name(arm, labels)
            if not chosen.evaluated:
                tail = (
                    f"not evaluated yet: {chosen.n_evaluable[0]} evaluable for {self.label}, it needs at "
                    f"least {self.min_evaluable}."
                )
            elif fired:
                tail = (
                    f"the harm rule '{self.id}' fires at tier {chosen.action} (recommend: {chosen.action})."
                )
            else:
                tail = f"the harm rule '{self.id}' does not fire."
            sentence = f"{self.label} for {subject}, tiers of '{self.id}': {words}; {tail}"
            uncertain = [r for r in results if r.evaluated and r.mc_uncertain]
            if uncertain:
                sentence += (
                    f" Tier(s) {', '.join(r.action for r in uncertain)} lie within 2 Monte Carlo "
                    "standard errors of their thresholds: this fit does not settle them."
                )
            out.append(
                replace(
                    chosen,
                    sentence=sentence,
                    mc_uncertain=bool(uncertain),
                    extra={**chosen.extra, "tiers": tiers},
                )
            )
        return out


@dataclass(frozen=True)
class Superiority(_ThresholdRule):
    """Compare two arms (a randomized pair): fires when either is better with probability > threshold.

    For a higher-is-better endpoint the quantity is ``P(p_a > p_b + margin)``; the rule reports the
    direction that is more probable and recommends dropping the inferior arm.
    """

    arms: tuple[str, str] = ("", "")
    margin_rate: float = 0.0
    higher_is_better: bool = True
    #: the independent Beta prior of each arm in the comparison, ``arm -> (a, b)``
    prior: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    #: how the prior was chosen, for sentences ("unit-information Beta(null, 1 - null)")
    prior_name: str = ""

    kind: ClassVar[str] = RuleKind.SUPERIORITY
    action: ClassVar[str] = Action.DROP_INFERIOR
    comparison: ClassVar[Comparison] = ">"

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.arms) != 2 or self.arms[0] == self.arms[1]:
            raise ValueError(f"rule {self.id!r}: superiority needs two different arms, got {self.arms}")

    def __str__(self) -> str:
        a, b = self.arms
        return (
            f"superiority rule '{self.id}' (recommend {self.action}): P({self.label} of {a} "
            f"better than {b}) or the reverse > {fmt_rate(self.threshold)}, once at least "
            f"{self.min_evaluable} patients per arm are evaluable, from concurrently randomized "
            f"patients with an independent {self.prior_name or 'Beta'} prior per arm (no borrowing)"
        )

    def posterior_ab(
        self, n: Mapping[str, int], y: Mapping[str, int]
    ) -> tuple[dict[str, float], dict[str, float]]:
        """The comparison's independent conjugate posterior ``(a, b)`` per arm from counts."""
        a = {x: self.prior[x][0] + y[x] for x in self.arms}
        b = {x: self.prior[x][1] + n[x] - y[x] for x in self.arms}
        return a, b

    def evaluate(
        self,
        posterior: Posterior,
        n_evaluable: Mapping[str, int],
        labels: Mapping[str, str] | None = None,
        *,
        source_note: str = "",
        extra: Mapping[str, object] | None = None,
    ) -> list[RuleResult]:
        """Evaluate the comparison; empty when either arm is absent from the posterior.

        ``source_note`` (what data and model the posterior comes from) is added to the sentence,
        ``extra`` to the result's ``extra``.
        """
        a, b = self.arms
        if a not in posterior.arms or b not in posterior.arms:
            return []
        est_ab = posterior.prob_better(a, b, margin=self.margin_rate, higher_is_better=self.higher_is_better)
        est_ba = posterior.prob_better(b, a, margin=self.margin_rate, higher_is_better=self.higher_is_better)
        op = ">" if self.higher_is_better else "<"
        shift = ""
        if self.margin_rate:
            shift = f" {'+' if self.higher_is_better else '-'} {fmt_rate(self.margin_rate)}"
        probs = {f"prob_{a}_better": est_ab.prob, f"prob_{b}_better": est_ba.prob, **dict(extra or {})}
        return self._comparison(
            (a, b, est_ab),
            (b, a, est_ba),
            lambda better, worse: f"P({self.label} {better} {op} {worse}{shift})",
            n_evaluable,
            labels,
            probs,
            source_note,
        )


@dataclass(frozen=True)
class _PredictiveRule(_ThresholdRule):
    """Predictive probability that an arm meets its final efficacy rule at its maximum size.

    The *success rule* is an efficacy rule of the config (``P(p_k > c_k) > theta``) applied at
    the arm's ``max_n`` evaluable patients; the quantity is the predictive probability of that
    success given the data so far (:mod:`decision_rules.predictive`). Evaluated on a *predictive
    source* (``BetaPredictive`` for the conjugate model, ``DrawsPredictive`` for sampled ones).

    Parameters
    ----------
    success_rule
        Id of the efficacy rule whose success at the final analysis is predicted.
    success_references
        Arm -> the success rule's reference rate ``c_k`` (arms not listed are skipped).
    success_threshold
        The success rule's threshold ``theta``.
    max_n
        Arm -> maximum sample size (the final analysis has this many evaluable patients).
    """

    success_rule: str = ""
    success_references: Mapping[str, float] = field(default_factory=dict)
    success_threshold: float = 0.975
    success_reference_name: str = "reference"
    max_n: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.success_threshold < 1.0:
            raise ValueError(f"rule {self.id!r}: the success threshold must lie in (0, 1)")
        for arm in self.success_references:
            if self.max_n.get(arm, 0) <= 0:
                raise ValueError(f"rule {self.id!r}: arm {arm} needs a positive max_n")

    def __str__(self) -> str:
        return (
            f"{self.kind} rule '{self.id}' (recommend {self.action}): predictive probability that "
            f"'{self.success_rule}' (P({self.label} > {self.success_reference_name}) > "
            f"{fmt_rate(self.success_threshold)}) holds at the arm's maximum sample size "
            f"{self.comparison} {fmt_rate(self.threshold)}, once at least {self.min_evaluable} "
            "patients are evaluable"
        )

    def remaining(self, arm: str, n_evaluable: int) -> int:
        """Outcomes still to come before the arm has ``max_n`` evaluable patients."""
        return max(int(self.max_n[arm]) - int(n_evaluable), 0)

    def quantity(self, arm: str) -> str:
        return (
            f"PP(P({self.label} > {fmt_rate(self.success_references[arm])}) > "
            f"{fmt_rate(self.success_threshold)} at n = {self.max_n[arm]})"
        )

    def decide_beta_arrays(
        self, a: npt.ArrayLike, b: npt.ArrayLike, n_evaluable: npt.ArrayLike, arm: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Vectorized rule for Beta posteriors (the simulator): ``(prob, evaluated, fired)``.

        ``a, b, n_evaluable`` are arrays over trials for ``arm``.
        """
        n = np.asarray(n_evaluable, np.int64)
        m = np.maximum(int(self.max_n[arm]) - n, 0)
        res = predictive_prob_success_beta(a, b, m, self.success_references[arm], self.success_threshold)
        return res.prob, n >= self.min_evaluable, self.decide_arrays(res.prob, n)

    def evaluate(
        self,
        source: PredictiveSource,
        n_evaluable: Mapping[str, int],
        labels: Mapping[str, str] | None = None,
        counts: Mapping[str, tuple[int, int]] | None = None,
    ) -> list[RuleResult]:
        """Evaluate for every arm with a success reference that the source knows.

        ``counts`` (arm -> ``(responders, evaluable)``) only enriches the sentences.
        """
        out = []
        for arm, ref in self.success_references.items():
            if arm not in source.arms:
                continue
            n = int(n_evaluable.get(arm, 0))
            m = self.remaining(arm, n)
            pred = source.predict(arm, m, ref, self.success_threshold)
            res = self._result(
                arms=(arm,),
                quantity=self.quantity(arm),
                est=pred.estimate,
                ns=(n,),
                subject=_name(arm, labels),
                extra={
                    "success_rule": self.success_rule,
                    "success_reference": ref,
                    "success_threshold": self.success_threshold,
                    "max_n": int(self.max_n[arm]),
                    **pred.to_dict(),
                },
            )
            if m == 0:
                detail = f" The arm has its {self.max_n[arm]} evaluable patients: this is its final result."
            elif pred.critical_count is None:
                detail = (
                    f" Even if all {m} outcomes still to come were responses, '{self.success_rule}' "
                    "would not be met."
                )
            else:
                now = ""
                if counts and arm in counts:
                    y, nn = counts[arm]
                    now = f" (now {y}/{nn}; {y + pred.critical_count} in total)"
                detail = (
                    f" To meet '{self.success_rule}' at n = {self.max_n[arm]} it needs at least "
                    f"{pred.critical_count} responders among the {m} outcomes still to come{now}."
                )
            if pred.boundary_uncertain:
                detail += (
                    " The critical count is Monte Carlo-uncertain (few effective draws or a final "
                    "probability within 2 MCSE of the threshold): this fit does not settle it."
                )
            mc_uncertain = res.mc_uncertain or (res.evaluated and pred.boundary_uncertain)
            out.append(replace(res, sentence=res.sentence + detail, mc_uncertain=mc_uncertain))
        return out


@dataclass(frozen=True)
class PredictiveFutility(_PredictiveRule):
    """Drop for futility when the predictive probability of final success is below the threshold."""

    kind: ClassVar[str] = RuleKind.PREDICTIVE_FUTILITY
    action: ClassVar[str] = Action.DROP_FUTILITY
    comparison: ClassVar[Comparison] = "<"


@dataclass(frozen=True)
class PredictiveEfficacy(_PredictiveRule):
    """Graduate early when the predictive probability of final success exceeds the threshold."""

    kind: ClassVar[str] = RuleKind.PREDICTIVE_EFFICACY
    action: ClassVar[str] = Action.GRADUATE
    comparison: ClassVar[Comparison] = ">"


#: predictive-probability rule kinds (evaluated on a predictive source, not on a posterior)
PREDICTIVE_KINDS: dict[str, type] = {
    RuleKind.PREDICTIVE_FUTILITY: PredictiveFutility,
    RuleKind.PREDICTIVE_EFFICACY: PredictiveEfficacy,
}

#: closed registry of binary-endpoint rule kinds, chosen in the config by ``kind:``
RULE_KINDS: dict[str, type] = {
    RuleKind.EFFICACY: Efficacy,
    RuleKind.FUTILITY: Futility,
    RuleKind.HARM: Harm,
    RuleKind.SUPERIORITY: Superiority,
    **PREDICTIVE_KINDS,
}
