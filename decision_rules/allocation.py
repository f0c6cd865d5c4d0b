"""Response-adaptive randomization: allocation rules as values, on arrays vectorized over trials.

The numerical core is a set of pure numpy functions on arrays shaped ``(..., K)`` (any leading
"trial" dimensions, ``K`` arms of one randomized set), so the operating-characteristics simulator
evaluates thousands of virtual trials in one call. :class:`AllocationRule` is the frozen value
built from the config; :meth:`AllocationRule.allocate_arrays` is the *only* implementation of the
rule and :meth:`AllocationRule.allocate` wraps it for one look's mappings (arm -> number).

Rules (``kind``):

* ``fixed``: the configured ratio (``1:1`` or any weights), restricted to the open arms.
* ``thall_wathen`` (Thall & Wathen 2007): ``r_k = P(best_k)^c / sum_j P(best_j)^c`` with ``c``
  fixed or ``c = n / (2N)``: ``n`` patients evaluable so far in the open arms of the set, ``N``
  the sum of their maximum sample sizes (``c`` is capped at 1/2, its value at ``n = N``). ``c = 0``
  is equal allocation; ``c = 1`` allocates proportionally to ``P(best)``.
* ``variance_weighted``: ``r_k`` proportional to ``sqrt(P(best_k) Var(p_k) / (n_k + 1))``
  (the rule of the MD Anderson / FACTS tradition; Viele et al. 2020, Clin Trials 17:52): arms
  that are likely best *and* still uncertain get more patients.

Then, in this order:

1. **Burn-in**: while any open arm of the set has fewer than ``burn_in`` evaluable patients,
   the fixed ratio is used unchanged (no bounds, no cap).
2. **Bounds**: every open arm gets at least ``min_prob`` and at most ``max_prob``. With ``K``
   open arms, ``min_prob`` is lowered to ``1/K`` and ``max_prob`` raised to ``1/K`` if needed, so
   the bounds can always be met (e.g. after a drop leaves fewer arms).
3. **Cap on the change between looks**: ``|r_k - previous_k| <= max_change``, where ``previous``
   is the previous look's allocation restricted to the open arms and rescaled to sum to 1 (and
   first brought within the bounds), so an arm that was just dropped releases its share to the
   others in proportion to their previous shares.

Bounds and cap act together as per-arm intervals ``[l_k, u_k]``; :func:`bound_allocation`
returns the allocation ``r_k = clip(lambda w_k, l_k, u_k)`` with ``lambda`` chosen so that
``sum r_k = 1``. This is the fixed point of "clip the arms outside their bounds, renormalise the
others, repeat": arms inside their bounds keep the ratios of the rule's weights. It is computed
exactly (``S(lambda) = sum_k clip(lambda w_k, l_k, u_k)`` is piecewise linear and nondecreasing,
so ``lambda`` is found between two of its breakpoints), and it satisfies the bounds whenever
``sum l_k <= 1 <= sum u_k``, which steps 2 and 3 guarantee.

Closed arms (dropped, graduated, suspended, queued) get probability 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from decision_rules.vocabulary import fmt_prob, fmt_rate

__all__ = [
    "ALLOCATION_KINDS",
    "AllocationKind",
    "ADAPTIVE_POWER",
    "AllocationArrays",
    "Allocation",
    "AllocationRule",
    "thall_wathen_power",
    "thall_wathen_weights",
    "variance_weighted_weights",
    "normalise",
    "bound_allocation",
    "allocate_arrays",
]

#: the allocation kinds of a config (`allocation.<cohort>.kind`); the tuple is derived from the type
AllocationKind = Literal["fixed", "thall_wathen", "variance_weighted"]
ALLOCATION_KINDS: tuple[str, ...] = get_args(AllocationKind)
#: the Thall-Wathen power that grows with the information: ``c = n / (2N)``
ADAPTIVE_POWER = "n/(2N)"


# ============================================================================= vectorized core
def normalise(weights: npt.ArrayLike, is_open: npt.ArrayLike | None = None) -> np.ndarray:
    """Weights restricted to the open arms and scaled to sum to 1 over the last axis.

    Rows whose open weights sum to 0 come back as all zeros.
    """
    w = np.asarray(weights, dtype=float)
    if is_open is not None:
        w = np.where(np.asarray(is_open, bool), w, 0.0)
    total = w.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, w / np.where(total > 0, total, 1.0), 0.0)


def thall_wathen_power(n: npt.ArrayLike, n_max: npt.ArrayLike) -> np.ndarray:
    """Thall-Wathen's ``c = n / (2N)``, capped at 1/2 (its value at ``n = N``).

    Parameters
    ----------
    n
        Patients evaluable so far in the set (any shape).
    n_max
        Maximum sample size of the set (same shape, or broadcastable).
    """
    n = np.asarray(n, dtype=float)
    n_max = np.asarray(n_max, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(n_max > 0, n / (2.0 * np.where(n_max > 0, n_max, 1.0)), 0.0)
    return np.clip(c, 0.0, 0.5)


def thall_wathen_weights(
    prob_best: npt.ArrayLike, power: npt.ArrayLike, is_open: npt.ArrayLike | None = None
) -> np.ndarray:
    """``P(best_k)^c / sum_j P(best_j)^c`` over the open arms (``0^0 = 1``: ``c = 0`` is 1:1).

    Parameters
    ----------
    prob_best
        ``(..., K)`` posterior probabilities that each arm is the best of the open arms.
    power
        ``c``: a scalar or an array of the leading shape ``(...)``.
    """
    pb = np.clip(np.asarray(prob_best, dtype=float), 0.0, 1.0)
    c = np.asarray(power, dtype=float)[..., None]
    return normalise(pb**c, is_open)


def variance_weighted_weights(
    prob_best: npt.ArrayLike, variance: npt.ArrayLike, n: npt.ArrayLike, is_open: npt.ArrayLike | None = None
) -> np.ndarray:
    """Weights proportional to ``sqrt(P(best_k) Var(p_k) / (n_k + 1))`` over the open arms.

    Parameters
    ----------
    prob_best, variance, n
        ``(..., K)``: probability of being best, posterior variance of the rate, and the number
        of evaluable patients of each arm.
    """
    pb = np.clip(np.asarray(prob_best, dtype=float), 0.0, 1.0)
    var = np.clip(np.asarray(variance, dtype=float), 0.0, None)
    n = np.asarray(n, dtype=float)
    return normalise(np.sqrt(pb * var / (n + 1.0)), is_open)


def bound_allocation(weights: npt.ArrayLike, lower: npt.ArrayLike, upper: npt.ArrayLike) -> np.ndarray:
    """The allocation ``r_k = clip(lambda w_k, l_k, u_k)`` with ``sum_k r_k = 1``.

    Arms strictly inside their bounds keep the ratios of ``weights``. Requires
    ``sum l <= 1 <= sum u`` and ``l <= u`` per arm (arms with ``l = u = 0`` are closed). When the
    arms with positive weight cannot absorb the mass even at their upper bounds, the arms with
    zero weight share the rest in proportion to their room ``u_k - l_k``.

    Parameters
    ----------
    weights
        ``(..., K)``, nonnegative.
    lower, upper
        Broadcastable to ``(..., K)``.

    Returns
    -------
    numpy.ndarray
        ``(..., K)``, each row summing to 1 within rounding and within its bounds.
    """
    w = np.asarray(weights, dtype=float)
    lo = np.broadcast_to(np.asarray(lower, dtype=float), w.shape)
    hi = np.broadcast_to(np.asarray(upper, dtype=float), w.shape)
    if np.any(lo > hi + 1e-12):
        raise ValueError("every lower bound must be at most its upper bound")
    if np.any(lo.sum(-1) > 1 + 1e-9) or np.any(hi.sum(-1) < 1 - 1e-9):
        raise ValueError("bounds are infeasible: need sum(lower) <= 1 <= sum(upper) in every row")
    pos = w > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        b_lo = np.where(pos, lo / np.where(pos, w, 1.0), 0.0)
        b_hi = np.where(pos, hi / np.where(pos, w, 1.0), 0.0)
    # candidate lambdas: 0 and every breakpoint; S is linear between consecutive ones
    lam = np.sort(np.concatenate([np.zeros(w.shape[:-1] + (1,)), b_lo, b_hi], axis=-1), axis=-1)

    def total(lmb: np.ndarray) -> np.ndarray:  # lmb (..., J) -> S(lmb) (..., J)
        return np.clip(lmb[..., :, None] * w[..., None, :], lo[..., None, :], hi[..., None, :]).sum(-1)

    s = total(lam)
    reach = s >= 1.0 - 1e-15
    feasible = reach[..., -1]
    j = np.argmax(reach, axis=-1)  # first breakpoint where S >= 1
    jm = np.maximum(j - 1, 0)
    take = lambda a, i: np.take_along_axis(a, i[..., None], -1)[..., 0]  # noqa: E731
    l0, l1 = take(lam, jm), take(lam, j)
    s0, s1 = take(s, jm), take(s, j)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(s1 > s0, (1.0 - s0) / np.where(s1 > s0, s1 - s0, 1.0), 1.0)
    lam_star = np.where(j == 0, l1, l0 + np.clip(frac, 0.0, 1.0) * (l1 - l0))
    out = np.clip(lam_star[..., None] * w, lo, hi)
    # infeasible for the positive-weight arms alone: they sit at their upper bounds and the
    # zero-weight arms fill the rest in proportion to their room
    room = np.where(pos, 0.0, hi - lo)
    rest = 1.0 - np.where(pos, hi, lo).sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(room.sum(-1) > 0, rest / np.where(room.sum(-1) > 0, room.sum(-1), 1.0), 0.0)
    fill = np.where(pos, hi, lo + room * np.clip(t, 0.0, 1.0)[..., None])
    return np.where(feasible[..., None], out, fill)


@dataclass(frozen=True)
class AllocationArrays:
    """The outcome of :func:`allocate_arrays`, every array shaped ``(..., K)`` or ``(...)``."""

    probabilities: np.ndarray
    reference: np.ndarray  # the fixed ratio over the open arms (what 1:1 would give)
    unconstrained: np.ndarray  # the rule's normalised weights before bounds and cap
    lower: np.ndarray  # the per-arm bounds that applied (bounds and cap together)
    upper: np.ndarray
    power: np.ndarray  # Thall-Wathen c used (nan for other kinds)
    burn_in_active: np.ndarray  # (...) bool


def allocate_arrays(
    kind: str,
    *,
    ratio: npt.ArrayLike,
    is_open: npt.ArrayLike,
    prob_best: npt.ArrayLike | None = None,
    variance: npt.ArrayLike | None = None,
    n: npt.ArrayLike | None = None,
    n_max: npt.ArrayLike | None = None,
    previous: npt.ArrayLike | None = None,
    power: float | str = ADAPTIVE_POWER,
    burn_in: int = 0,
    min_prob: float = 0.0,
    max_prob: float = 1.0,
    max_change: float | None = None,
) -> AllocationArrays:
    """Allocation probabilities of one randomized set, vectorized over leading dimensions.

    Parameters
    ----------
    kind
        ``"fixed"``, ``"thall_wathen"`` or ``"variance_weighted"``.
    ratio
        ``(K,)`` or ``(..., K)`` fixed weights (the burn-in allocation and the 1:1 reference).
    is_open
        ``(..., K)`` bool: arms currently enrolling in the set.
    prob_best
        ``(..., K)`` P(best) among the *open* arms (closed arms are ignored).
    variance
        ``(..., K)`` posterior variance of each rate (``variance_weighted``).
    n
        ``(..., K)`` evaluable patients per arm on the allocation endpoint.
    n_max
        ``(..., K)`` maximum sample size per arm (for ``c = n/(2N)``).
    previous
        ``(..., K)`` previous allocation (any scale; restricted to open arms and rescaled), or
        ``None`` for no cap.
    power
        Thall-Wathen ``c``: a number or ``"n/(2N)"``.
    burn_in, min_prob, max_prob, max_change
        See the module docstring.
    """
    if kind not in ALLOCATION_KINDS:
        raise ValueError(f"unknown allocation kind {kind!r}; use one of {', '.join(ALLOCATION_KINDS)}")
    is_open = np.asarray(is_open, dtype=bool)
    shape = is_open.shape
    k_open = is_open.sum(-1)
    ref = normalise(np.broadcast_to(np.asarray(ratio, dtype=float), shape), is_open)
    n_arr = np.zeros(shape) if n is None else np.broadcast_to(np.asarray(n, dtype=float), shape)
    nan = np.full(shape[:-1], np.nan)
    c = nan
    if kind == "fixed":
        weights = ref
    else:
        if prob_best is None:
            raise ValueError(f"{kind} allocation needs prob_best")
        pb = np.broadcast_to(np.asarray(prob_best, dtype=float), shape)
        if kind == "thall_wathen":
            if isinstance(power, str):
                if power != ADAPTIVE_POWER:
                    raise ValueError(f"power must be a number or {ADAPTIVE_POWER!r}, got {power!r}")
                if n_max is None:
                    raise ValueError("c = n/(2N) needs n and n_max")
                nm = np.broadcast_to(np.asarray(n_max, dtype=float), shape)
                c = thall_wathen_power(np.where(is_open, n_arr, 0).sum(-1), np.where(is_open, nm, 0).sum(-1))
            else:
                c = np.broadcast_to(np.asarray(float(power)), shape[:-1])
            weights = thall_wathen_weights(pb, c, is_open)
        else:
            if variance is None:
                raise ValueError("variance_weighted allocation needs variance")
            var = np.broadcast_to(np.asarray(variance, dtype=float), shape)
            weights = variance_weighted_weights(pb, var, n_arr, is_open)
        # nothing to go on (all weights zero): fall back to the fixed ratio
        weights = np.where(weights.sum(-1, keepdims=True) > 0, weights, ref)
    with np.errstate(divide="ignore"):
        inv_k = np.where(k_open > 0, 1.0 / np.maximum(k_open, 1), 0.0)[..., None]
    lo = np.where(is_open, np.minimum(min_prob, inv_k), 0.0)
    hi = np.where(is_open, np.maximum(max_prob, inv_k), 0.0)
    # rows with no open arm get dummy bounds for the computation and zeros in the end
    empty = (k_open == 0)[..., None]
    if previous is not None and max_change is not None:
        prev = normalise(np.broadcast_to(np.asarray(previous, dtype=float), shape), is_open)
        has_prev = prev.sum(-1, keepdims=True) > 0
        safe_prev = np.where(has_prev, prev, ref)
        prev_in = bound_allocation(
            np.where(empty, 1.0, safe_prev), np.where(empty, 0.0, lo), np.where(empty, 1.0, hi)
        )
        lo = np.where(has_prev & is_open, np.maximum(lo, prev_in - max_change), lo)
        hi = np.where(has_prev & is_open, np.minimum(hi, prev_in + max_change), hi)
    burn = np.any(is_open & (n_arr < burn_in), axis=-1) if burn_in > 0 else np.zeros(shape[:-1], bool)
    adaptive = kind != "fixed"
    if adaptive:
        bounded = bound_allocation(
            np.where(empty, 1.0, weights), np.where(empty, 0.0, lo), np.where(empty, 1.0, hi)
        )
        bounded = np.where(empty, 0.0, bounded)
        probs = np.where(burn[..., None], ref, bounded)
    else:
        probs = ref
    return AllocationArrays(
        probabilities=probs,
        reference=ref,
        unconstrained=weights,
        lower=lo,
        upper=hi,
        power=c,
        burn_in_active=burn & adaptive,
    )


# ============================================================================= values
@dataclass(frozen=True)
class Allocation:
    """The allocation of one randomized set at one look, with everything that produced it."""

    cohort: str
    rule: str  # the rule in words
    kind: str
    endpoint: str
    probabilities: Mapping[str, float]
    reference: Mapping[str, float]
    previous: Mapping[str, float] | None
    previous_source: str
    inputs: Mapping[str, object]
    burn_in_active: bool
    bounded: Mapping[str, str]  # arm -> "min_prob" / "max_prob" / "max_change" when a bound binds
    sentence: str
    settings: Mapping[str, object] = field(default_factory=dict)

    def changed(self, tol: float = 0.005) -> bool:
        """Whether any arm's probability moved by at least ``tol`` from the previous allocation."""
        prev = self.previous or self.reference
        return any(abs(p - prev.get(a, 0.0)) >= tol for a, p in self.probabilities.items())

    def to_dict(self) -> dict:
        return {
            "cohort": self.cohort,
            "rule": self.rule,
            "kind": self.kind,
            "endpoint": self.endpoint,
            "settings": dict(self.settings),
            "probabilities": dict(self.probabilities),
            "previous": None if self.previous is None else dict(self.previous),
            "previous_source": self.previous_source,
            "reference": dict(self.reference),
            "burn_in_active": self.burn_in_active,
            "bounded": dict(self.bounded),
            "inputs": dict(self.inputs),
            "sentence": self.sentence,
        }


def _ratio_words(probs: Mapping[str, float], arms: Sequence[str]) -> str:
    return " : ".join(f"{a} {fmt_rate(probs.get(a, 0.0))}" for a in arms)


@dataclass(frozen=True)
class AllocationRule:
    """Allocation rule of one randomized set (a routing cohort with two or more arms).

    Parameters
    ----------
    cohort
        The routing cohort whose patients are randomized.
    arms
        The arms of the set, in config order (the order of every array).
    ratio
        Fixed weights per arm (the cohort's ``allocation``): burn-in allocation and reference.
    kind
        ``fixed``, ``thall_wathen`` or ``variance_weighted``.
    endpoint, endpoint_label, higher_is_better
        The endpoint whose posterior drives the rule ("best" is the highest rate unless lower
        is better).
    power
        Thall-Wathen ``c``: a number >= 0 or ``"n/(2N)"``.
    burn_in
        Evaluable patients every open arm needs before the allocation adapts.
    min_prob, max_prob
        Bounds on each open arm's probability.
    max_change
        Largest change of an arm's probability between consecutive looks (``None``: no cap).
    """

    cohort: str
    arms: tuple[str, ...]
    ratio: Mapping[str, float]
    kind: str = "fixed"
    endpoint: str = "crc"
    endpoint_label: str = ""
    higher_is_better: bool = True
    power: float | str = ADAPTIVE_POWER
    burn_in: int = 0
    min_prob: float = 0.0
    max_prob: float = 1.0
    max_change: float | None = None

    def __post_init__(self) -> None:
        where = f"allocation rule of cohort {self.cohort!r}"
        if self.kind not in ALLOCATION_KINDS:
            raise ValueError(f"{where}: kind must be one of {', '.join(ALLOCATION_KINDS)}, got {self.kind!r}")
        if len(self.arms) < 2 or len(set(self.arms)) != len(self.arms):
            raise ValueError(f"{where}: needs two or more different arms, got {self.arms}")
        if set(self.ratio) != set(self.arms) or any(v <= 0 for v in self.ratio.values()):
            raise ValueError(f"{where}: ratio needs a positive weight for exactly {self.arms}")
        if isinstance(self.power, str):
            if self.power != ADAPTIVE_POWER:
                raise ValueError(f"{where}: power must be a number or {ADAPTIVE_POWER!r}")
        elif self.power < 0:
            raise ValueError(f"{where}: power must be >= 0, got {self.power}")
        if not 0.0 <= self.min_prob <= 1.0 / len(self.arms):
            raise ValueError(
                f"{where}: min_prob must lie in [0, 1/{len(self.arms)}] so every arm can get it, "
                f"got {self.min_prob}"
            )
        if not 1.0 / len(self.arms) <= self.max_prob <= 1.0:
            raise ValueError(f"{where}: max_prob must lie in [1/{len(self.arms)}, 1], got {self.max_prob}")
        if self.max_change is not None and not 0.0 < self.max_change <= 1.0:
            raise ValueError(f"{where}: max_change must lie in (0, 1], got {self.max_change}")
        if self.burn_in < 0:
            raise ValueError(f"{where}: burn_in must be >= 0")

    @property
    def label(self) -> str:
        return self.endpoint_label or self.endpoint

    @property
    def ratio_array(self) -> np.ndarray:
        return np.array([self.ratio[a] for a in self.arms], dtype=float)

    def __str__(self) -> str:
        ratio = ":".join(f"{self.ratio[a]:g}" for a in self.arms)
        if self.kind == "fixed":
            return f"fixed allocation {ratio} ({', '.join(self.arms)}) in cohort {self.cohort}"
        best = "best" if self.higher_is_better else "best (lowest rate)"
        if self.kind == "thall_wathen":
            c = "c = n/(2N)" if isinstance(self.power, str) else f"c = {self.power:g}"
            head = f"Thall-Wathen allocation P({best})^c / sum with {c} on {self.label}"
        else:
            head = f"allocation proportional to sqrt(P({best}) Var / (n + 1)) on {self.label}"
        parts = [f"{head} in cohort {self.cohort} ({', '.join(self.arms)})"]
        if self.burn_in:
            parts.append(f"after a burn-in at {ratio} until every open arm has {self.burn_in} evaluable")
        if self.min_prob > 0 or self.max_prob < 1:
            parts.append(f"each arm within [{fmt_rate(self.min_prob)}, {fmt_rate(self.max_prob)}]")
        if self.max_change is not None:
            parts.append(f"changing by at most {fmt_rate(self.max_change)} per look")
        return ", ".join(parts)

    def settings(self) -> dict:
        return {
            "kind": self.kind,
            "ratio": dict(self.ratio),
            "power": self.power if self.kind == "thall_wathen" else None,
            "burn_in": self.burn_in,
            "min_prob": self.min_prob,
            "max_prob": self.max_prob,
            "max_change": self.max_change,
        }

    def allocate_arrays(
        self,
        *,
        is_open: npt.ArrayLike,
        prob_best: npt.ArrayLike | None = None,
        variance: npt.ArrayLike | None = None,
        n: npt.ArrayLike | None = None,
        n_max: npt.ArrayLike | None = None,
        previous: npt.ArrayLike | None = None,
    ) -> AllocationArrays:
        """The rule on arrays shaped ``(..., K)`` in the order of :attr:`arms` (the simulator)."""
        return allocate_arrays(
            self.kind,
            ratio=self.ratio_array,
            is_open=is_open,
            prob_best=prob_best,
            variance=variance,
            n=n,
            n_max=n_max,
            previous=previous,
            power=self.power,
            burn_in=self.burn_in,
            min_prob=self.min_prob,
            max_prob=self.max_prob,
            max_change=self.max_change,
        )

    def allocate(
        self,
        *,
        is_open: Mapping[str, bool],
        n_evaluable: Mapping[str, int],
        max_n: Mapping[str, int],
        prob_best: Mapping[str, float] | None = None,
        variance: Mapping[str, float] | None = None,
        previous: Mapping[str, float] | None = None,
        previous_source: str = "",
        mcse_prob_best: Mapping[str, float] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Allocation:
        """The rule on one look's mappings (arm -> value)."""
        arms = self.arms

        def arr(m: Mapping[str, float] | None, default: float = 0.0) -> np.ndarray | None:
            return None if m is None else np.array([float(m.get(a, default)) for a in arms])

        open_arr = np.array([bool(is_open.get(a, False)) for a in arms])
        res = self.allocate_arrays(
            is_open=open_arr,
            prob_best=arr(prob_best),
            variance=arr(variance),
            n=arr(n_evaluable),
            n_max=arr(max_n),
            previous=arr(previous),
        )
        probs = {a: float(p) for a, p in zip(arms, res.probabilities, strict=True)}
        ref = {a: float(p) for a, p in zip(arms, res.reference, strict=True)}
        bounded: dict[str, str] = {}
        if self.kind != "fixed" and not bool(res.burn_in_active):
            for i, a in enumerate(arms):
                if not open_arr[i] or abs(res.probabilities[i] - res.unconstrained[i]) < 1e-9:
                    continue
                at_lo = abs(res.probabilities[i] - res.lower[i]) < 1e-9
                at_hi = abs(res.probabilities[i] - res.upper[i]) < 1e-9
                if at_lo and res.lower[i] > min(self.min_prob, 1.0) + 1e-12:
                    bounded[a] = "max_change"
                elif at_lo:
                    bounded[a] = "min_prob"
                elif at_hi and res.upper[i] < self.max_prob - 1e-12:
                    bounded[a] = "max_change"
                elif at_hi:
                    bounded[a] = "max_prob"
        open_arms = [a for a, o in zip(arms, open_arr, strict=True) if o]
        closed = [a for a in arms if a not in open_arms]
        n_open = int(sum(n_evaluable.get(a, 0) for a in open_arms))
        n_max_open = int(sum(max_n.get(a, 0) for a in open_arms))
        inputs: dict[str, object] = {
            "open_arms": open_arms,
            "closed_arms": closed,
            "n_evaluable": {a: int(n_evaluable.get(a, 0)) for a in arms},
            "max_n": {a: int(max_n.get(a, 0)) for a in arms},
            "unconstrained": {a: float(w) for a, w in zip(arms, res.unconstrained, strict=True)},
            "lower": {a: float(v) for a, v in zip(arms, res.lower, strict=True)},
            "upper": {a: float(v) for a, v in zip(arms, res.upper, strict=True)},
        }
        if prob_best is not None:
            inputs["prob_best"] = {a: float(prob_best.get(a, 0.0)) for a in arms}
        if mcse_prob_best is not None:
            inputs["mcse_prob_best"] = {a: float(mcse_prob_best.get(a, 0.0)) for a in arms}
        if variance is not None:
            inputs["variance"] = {a: float(variance.get(a, 0.0)) for a in arms}
        if self.kind == "thall_wathen":
            inputs["power_c"] = float(res.power)
            inputs["n"] = n_open
            inputs["N"] = n_max_open
        sentence = self._sentence(
            probs, ref, previous, previous_source, bool(res.burn_in_active), bounded, inputs, labels
        )
        return Allocation(
            cohort=self.cohort,
            rule=str(self),
            kind=self.kind,
            endpoint=self.endpoint,
            probabilities=probs,
            reference=ref,
            previous=None if previous is None else {a: float(previous.get(a, 0.0)) for a in arms},
            previous_source=previous_source,
            inputs=inputs,
            burn_in_active=bool(res.burn_in_active),
            bounded=bounded,
            sentence=sentence,
            settings=self.settings(),
        )

    def _sentence(
        self,
        probs: Mapping[str, float],
        ref: Mapping[str, float],
        previous: Mapping[str, float] | None,
        previous_source: str,
        burn: bool,
        bounded: Mapping[str, str],
        inputs: Mapping[str, Any],
        labels: Mapping[str, str] | None,
    ) -> str:
        arms = self.arms
        open_arms = inputs["open_arms"]
        head = f"Cohort {self.cohort}: randomize {_ratio_words(probs, open_arms)}"
        if inputs["closed_arms"]:
            head += f" ({', '.join(inputs['closed_arms'])} closed, their share rescaled to the open arms)"
        if len(open_arms) <= 1:
            why = "only one arm of the set is open" if open_arms else "no arm of the set is open"
            return f"{head}: {why}."
        if self.kind == "fixed":
            why = "fixed allocation"
        elif burn:
            short = [a for a in open_arms if inputs["n_evaluable"][a] < self.burn_in]
            n_ev = inputs["n_evaluable"]
            have = ", ".join(f"{a} has {n_ev[a]}" for a in short)
            why = (
                f"burn-in: {have} of the {self.burn_in} evaluable patients needed "
                "before the allocation adapts"
            )
        else:
            pb = inputs.get("prob_best", {})
            pbs = ", ".join(f"{a} {fmt_prob(pb.get(a, 0.0))}" for a in open_arms)
            if self.kind == "thall_wathen":
                why = (
                    f"Thall-Wathen with c = {inputs['power_c']:.3g}"
                    + (f" (n = {inputs['n']} of N = {inputs['N']})" if isinstance(self.power, str) else "")
                    + f" on P(best {self.label}): {pbs}"
                )
            else:
                why = f"variance-weighted on P(best {self.label}): {pbs}"
            if bounded:
                why += "; bounded by " + ", ".join(f"{k} for {a}" for a, k in bounded.items())
        tail = ""
        if previous is not None:
            src = f" ({previous_source})" if previous_source else ""
            tail += f" Previously {_ratio_words(previous, arms)}{src}."
        if self.kind != "fixed":
            tail += f" The fixed ratio would give {_ratio_words(ref, open_arms)}."
        return f"{head} ({why}).{tail}"
