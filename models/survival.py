"""Piecewise-exponential survival model across arms, fitted with PyMC on sufficient statistics.

Time is split at the cut points ``0 = b_0 < b_1 < ... < b_J`` (days; ``b_J`` the end of
follow-up) into ``J`` intervals; interval ``j`` is ``[b_{j-1}, b_j)`` and the last one's hazard
is assumed to continue beyond ``b_J``. The hazard of arm ``k`` in interval ``j`` is

    log h_kj = eta_k + gamma_j,

a baseline shape ``gamma`` shared by the arms and an arm level ``eta_k``. The shape is a Gaussian
random walk with a fixed step standard deviation ``sigma`` (the smoothing prior:
``g_1 = 0``, ``g_j = g_{j-1} + sigma eps_j``, ``eps_j ~ Normal(0, 1)``), centred to mean zero
(``gamma = g - mean(g)``), so ``eta_k`` is arm ``k``'s log hazard per day averaged over the
intervals. Hazards are proportional across arms: ``eta_a - eta_b`` is the log hazard ratio of
``a`` versus ``b`` at every time.

**Shape groups** (``shape_groups``, one group index per arm; default ``None``, one shape for all
arms). Regimens can have very different hazard shapes (intensive chemotherapy: early induction
deaths, then a plateau; low-intensity regimens: steadier hazards), and one shared shape then
biases every arm's median towards the pooled shape. With ``G`` groups the model is
``log h_kj = eta_k + gamma_{g(k), j}``: ``G`` independent random walks of the prior above, each
centred to mean zero over the intervals; in the posterior ``gamma`` then has dims
``(shape_group, interval)`` (coordinate ``shape_group = 0 .. G-1``) instead of ``(interval)``.
Hazards stay proportional within a group; ``eta_a - eta_b`` for arms of different groups is the
difference of their mean log hazards, not a hazard ratio at every time.

``sigma`` is fixed rather than given a hyperprior: six or so intervals cannot inform it, and
a fixed ``sigma`` keeps the posterior log-concave given ``tau`` (a hyperprior on ``sigma`` made
NUTS diverge in its funnel, on data with near-constant hazards).

* ``hierarchical``: ``eta_k ~ Normal(mu, tau)``, ``mu ~ Normal(m, s)``,
  ``tau ~ HalfNormal | HalfCauchy``: the arms' log hazard ratios against the typical arm are
  partially pooled, as the binary hierarchical model pools log-odds. The sampler sees it
  partially non-centred (Gorinova, Moore and Hoffman 2020): ``r_k ~ Normal(w_k mu, tau^w_k)``,
  ``eta_k = mu + tau^(1 - w_k) (r_k - w_k mu)``, which gives exactly ``eta_k ~ Normal(mu, tau)``
  for any ``w_k`` in [0, 1]; ``w_k = d_k / (d_k + 100)`` with ``d_k`` the arm's events (the data's
  share of the precision of ``eta_k`` when the between-arm sd is about 0.1), so arms with
  hundreds of events are close to centred and trial-sized arms close to non-centred. The
  non-centred form alone diverged on several-thousand-patient data sets, the centred form on
  early-look ones. With very little data and one arm in conflict with the others (say one
  event in 40 days at risk) a few divergent transitions can remain at ``target_accept = 0.9``:
  the configured retries (higher ``target_accept``) are meant for this.
* ``independent``: ``eta_k ~ Normal(m, s)`` independently (no borrowing; the baseline shape is
  still shared). With a single interval the arms are fully independent, which the tests use for
  an exact check.

``m = log(ln 2 / median_days)``: the prior is centred on the constant hazard with that median.

**Per-arm prior centres** (``level_median_days`` a sequence, one median per arm, e.g. each arm's
historical benchmark): ``m_k = log(ln 2 / median_k)``. Independent: ``eta_k ~ Normal(m_k, s)``.
Hierarchical: the arms are pooled in their departure from their own centre (as the binary
hierarchical model pools log-odds relative to each arm's null), ``eta_k = m_k + delta_k``,
``delta_k ~ Normal(mu, tau)``, ``mu ~ Normal(0, s)``; the partially non-centred form above is
applied to ``delta`` (``delta_raw``), and ``mu`` is then the typical log hazard ratio against
the benchmarks, ``delta`` (arm) each arm's. Pooling the absolute log hazards instead would pull
an arm with a long benchmark median and one with a short benchmark towards each other. With a
float ``level_median_days`` the model is the one above, draw for draw.

The likelihood uses sufficient statistics: with ``d_kj`` events and ``E_kj`` days at risk in arm
``k`` and interval ``j`` the piecewise-exponential log-likelihood is
``sum_kj d_kj log h_kj - h_kj E_kj`` (the Poisson kernel), so a fit costs the same for 50 or
50,000 patients.

**Day-0 events** (EFS's MRD-positive remissions, dated at the response date) cannot come from a
continuous hazard. They get a point mass: ``P(event at day 0) = pi_k``, ``pi_k ~ Beta(a, b)``
independently per arm, and the piecewise-exponential part describes the patients without one.
The likelihood factorises (binomial in ``pi``, Poisson kernel in the hazards) and so does the
prior, so ``pi_k`` is drawn exactly from its conjugate ``Beta(a + d0_k, b + n0_k - d0_k)``
posterior (seeded) next to the NUTS draws. Then ``S_k(t) = (1 - pi_k) exp(-H_k(t))``.
The point mass sits at ``SurvivalData.point_mass_days`` (default 0; ELN 2022 EFS counts
"treatment failure" as an event on day 1, so 1 there): for ``t >= point_mass_days`` ``S`` is as
above (and so are the horizons), and the median is ``point_mass_days`` when ``pi_k >= 1/2`` (see
:func:`median_survival` for the mixture before that day).

Derived per draw and stored in the posterior: ``hazard`` (arm, interval), ``median`` (arm, days:
the time where ``S = 1/2``; ``point_mass_days`` (default 0) when ``pi_k >= 1/2``; beyond ``b_J``
it is extrapolated with the last interval's hazard, and ``prob_median_beyond_follow_up`` in the
report says how often),
``survival`` (arm, horizon: ``S`` at 180, 365, 730 days) and, with day-0 events,
``prob_day0_event`` (arm).

:mod:`models.survival_check` compares a fit with the Kaplan-Meier curve of the data (a posterior
predictive check per arm).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import arviz as az
import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from models.binary import _tau_rv
from models.sampling import SamplerSettings, sample_nuts
from models.survival_batch import POINT_MASS_PRIOR

HORIZONS = (180, 365, 730)
#: events at which an arm's level is sampled half centred, half non-centred (see the module docstring)
CENTRING_EVENTS = 100.0
TauDist = Literal["half_normal", "half_cauchy"]


def interval_labels(cut_points: Sequence[float]) -> list[str]:
    """``["0-30", "30-60", ...]`` for the intervals between consecutive cut points."""
    return [f"{a:g}-{b:g}" for a, b in zip(cut_points[:-1], cut_points[1:], strict=True)]


def split_exposure(
    time: np.ndarray, event: np.ndarray, cut_points: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Events and days at risk per interval for one group of patients.

    Each patient is at risk on ``[0, time)``; an event at ``time`` falls in the interval that
    contains it (the last interval also takes times at or beyond its end).

    Returns
    -------
    events, exposure
        Arrays of length ``len(cut_points) - 1``.
    """
    b = np.asarray(cut_points, dtype=float)
    t = np.asarray(time, dtype=float)
    ev = np.asarray(event, dtype=bool)
    if t.size and (np.any(t < 0) or not np.all(np.isfinite(t))):
        raise ValueError("times must be finite and >= 0")
    starts, ends = b[:-1], b[1:].copy()
    ends[-1] = np.inf
    exposure = np.clip(t[:, None] - starts[None, :], 0.0, (ends - starts)[None, :]).sum(axis=0)
    idx = np.searchsorted(b[1:-1], t[ev], side="right")
    events = np.bincount(idx, minlength=len(starts)).astype(float)
    return events, exposure


@dataclass(frozen=True)
class SurvivalData:
    """Sufficient statistics of one survival endpoint across arms.

    Parameters
    ----------
    arms
        Arm ids (the ``arm`` coordinate).
    cut_points
        Interval boundaries ``0 = b_0 < ... < b_J`` in days.
    events, exposure
        ``(arm, interval)`` events and days at risk of the patients without a day-0 event.
    n
        Patients per arm whose point-mass status is known (with day-0 events): with a point mass,
        a patient censored on or before ``point_mass_days`` (ELN 2022: alive with a response
        "not evaluable", censored on day 1) is not known to have escaped it and is left out of
        ``n`` (counting it would bias ``pi`` low); its days at risk still count.
    day0_events
        Events at day 0 per arm (zeros when the endpoint has none).
    has_day0
        Whether the endpoint has a day-0 point mass (EFS).
    point_mass_days
        The day at which the point-mass events happen (default 0; ELN 2022 EFS counts
        "treatment failure" on day 1, so 1.0 there). Only the median depends on it (see
        :func:`median_survival`).
    """

    arms: tuple[str, ...]
    cut_points: tuple[float, ...]
    events: np.ndarray
    exposure: np.ndarray
    n: np.ndarray
    day0_events: np.ndarray
    has_day0: bool = False
    point_mass_days: float = 0.0

    def __post_init__(self):
        k, j = len(self.arms), len(self.cut_points) - 1
        b = np.asarray(self.cut_points, dtype=float)
        if j < 1 or b[0] != 0 or np.any(np.diff(b) <= 0):
            raise ValueError(f"cut points must start at 0 and increase strictly, got {self.cut_points}")
        for name, shape in (("events", (k, j)), ("exposure", (k, j)), ("n", (k,)), ("day0_events", (k,))):
            v = np.asarray(getattr(self, name))
            if v.shape != shape:
                raise ValueError(f"{name} must have shape {shape}, got {v.shape}")
        if np.any(np.asarray(self.events) < 0) or np.any(np.asarray(self.exposure) < 0):
            raise ValueError("events and exposure must be >= 0")
        if np.any(np.asarray(self.day0_events) > np.asarray(self.n)):
            raise ValueError("day-0 events cannot exceed the number of patients")
        if not (np.isfinite(self.point_mass_days) and self.point_mass_days >= 0):
            raise ValueError(f"point_mass_days must be finite and >= 0, got {self.point_mass_days}")

    @classmethod
    def from_times(
        cls,
        arms: Sequence[str],
        cut_points: Sequence[float],
        arm: Sequence[str],
        time: np.ndarray,
        event: np.ndarray,
        day0: np.ndarray | None = None,
        has_day0: bool = False,
        point_mass_days: float = 0.0,
    ) -> SurvivalData:
        """Build from per-patient ``arm``, ``time`` (days), ``event`` (0/1) and ``day0`` flags.

        Patients flagged ``day0`` (a point-mass event at ``point_mass_days``) only count in ``n``
        and ``day0_events``; their ``time`` and ``event`` are not used. With ``has_day0``, a
        patient censored on or before ``point_mass_days`` does not count in ``n`` (see the class).
        """
        arm_of = np.asarray(arm, dtype=object)
        time = np.asarray(time, dtype=float)
        event = np.asarray(event, dtype=bool)
        day0 = np.zeros(time.shape, bool) if day0 is None else np.asarray(day0, dtype=bool)
        j = len(cut_points) - 1
        ev = np.zeros((len(arms), j))
        ex = np.zeros((len(arms), j))
        n = np.zeros(len(arms), dtype=np.int64)
        d0 = np.zeros(len(arms), dtype=np.int64)
        for k, a in enumerate(arms):
            m = arm_of == a
            unknown = ~day0 & ~event & (time <= point_mass_days) if has_day0 else np.zeros_like(m)
            n[k] = int((m & ~unknown).sum())
            d0[k] = int((m & day0).sum())
            cont = m & ~day0
            ev[k], ex[k] = split_exposure(time[cont], event[cont], cut_points)
        return cls(
            tuple(arms), tuple(float(c) for c in cut_points), ev, ex, n, d0, has_day0, float(point_mass_days)
        )

    @property
    def n_intervals(self) -> int:
        return len(self.cut_points) - 1

    def constant_data(self) -> xr.Dataset:
        b = np.asarray(self.cut_points, dtype=float)
        ds = xr.Dataset(
            {
                "events": (("arm", "interval"), np.asarray(self.events, dtype=float)),
                "exposure": (("arm", "interval"), np.asarray(self.exposure, dtype=float)),
                "n": ("arm", np.asarray(self.n, dtype=np.int64)),
                "day0_events": ("arm", np.asarray(self.day0_events, dtype=np.int64)),
                "interval_start": ("interval", b[:-1]),
                "interval_end": ("interval", b[1:]),
            },
            coords={"arm": list(self.arms), "interval": interval_labels(self.cut_points)},
        )
        if self.point_mass_days:
            ds.attrs["point_mass_days"] = float(self.point_mass_days)
        return ds


# ----------------------------------------------------------------------------- derived quantities
def cumulative_hazard(hazard: np.ndarray, cut_points: Sequence[float], t: float) -> np.ndarray:
    """``H(t)`` from hazards ``(..., interval)``; the last interval continues beyond its end."""
    b = np.asarray(cut_points, dtype=float)
    widths = np.diff(b)
    widths[-1] = np.inf
    overlap = np.clip(t - b[:-1], 0.0, widths)
    return np.sum(hazard * overlap, axis=-1)


def _time_at_cumulative_hazard(hazard: np.ndarray, cut_points: Sequence[float], target: np.ndarray):
    """The time ``t`` with ``H(t) = target`` (``target > 0``; the last hazard continues)."""
    b = np.asarray(cut_points, dtype=float)
    widths = np.diff(b)
    # cumulative hazard at the start of each interval
    h_start = np.concatenate(
        [np.zeros(hazard.shape[:-1] + (1,)), np.cumsum(hazard * widths, axis=-1)[..., :-1]], -1
    )
    j = np.sum(h_start < target[..., None], axis=-1) - 1
    j = np.clip(j, 0, hazard.shape[-1] - 1)
    hj = np.take_along_axis(hazard, j[..., None], -1)[..., 0]
    h0 = np.take_along_axis(h_start, j[..., None], -1)[..., 0]
    with np.errstate(invalid="ignore", over="ignore"):
        return b[:-1][j] + (target - h0) / hj


def median_survival(
    hazard: np.ndarray,
    cut_points: Sequence[float],
    day0: np.ndarray | None = None,
    point_mass_days: float = 0.0,
) -> np.ndarray:
    """Median survival (days) per draw: ``S(t) = (1 - day0) exp(-H(t)) = 1/2``.

    Beyond the last cut point the last interval's hazard is extrapolated. The point mass
    ``day0`` sits at ``point_mass_days`` (``p``): the model is the mixture "event at ``p`` with
    probability ``day0``, else the piecewise-exponential time", so ``S(t) = (1 - day0) exp(-H(t))``
    for ``t >= p`` and ``day0 + (1 - day0) exp(-H(t))`` before ``p``. The median is ``p`` when
    ``day0 >= 1/2`` (0 with the default ``p = 0``, as before), in general ``p`` whenever ``S``
    jumps across 1/2 at ``p``, and the time where the mixture's ``S`` is 1/2 otherwise.
    """
    target = np.log(2.0) * np.ones(hazard.shape[:-1])
    if day0 is not None:
        with np.errstate(divide="ignore"):
            target = np.log(2.0) + np.log1p(-np.asarray(day0, dtype=float))
    med = _time_at_cumulative_hazard(hazard, cut_points, target)
    if not point_mass_days:
        return np.where(target <= 0, 0.0, med)
    p = float(point_mass_days)
    pi = np.zeros(hazard.shape[:-1]) if day0 is None else np.broadcast_to(day0, hazard.shape[:-1])
    after = (target > 0) & (med >= p)
    # S just before p: the median is p when the jump at p crosses 1/2
    s_before = pi + (1.0 - pi) * np.exp(-cumulative_hazard(hazard, cut_points, p))
    jump = s_before > 0.5
    # otherwise (pi < 1/2, a hazard so high that S = 1/2 before p): pi + (1 - pi) e^-H = 1/2
    with np.errstate(divide="ignore", invalid="ignore"):
        target_before = np.log1p(-pi) - np.log(0.5 - pi)
        before = _time_at_cumulative_hazard(hazard, cut_points, np.where(jump, 1.0, target_before))
    return np.where(after, med, np.where(jump, p, before))


# ----------------------------------------------------------------------------- the model
@dataclass(frozen=True)
class PiecewiseExponential:
    """Piecewise-exponential model across arms (see the module docstring).

    Parameters
    ----------
    kind
        ``"hierarchical"`` (arm levels partially pooled) or ``"independent"``.
    level_median_days, level_sd
        Prior centre(s) and sd of the arm levels. A float: one centre
        ``m = log(ln 2 / level_median_days)`` for every arm, ``mu ~ Normal(m, level_sd)``
        (hierarchical) or ``eta_k ~ Normal(m, level_sd)`` (independent). A sequence (one median
        per arm, in the order of ``data.arms``, e.g. each arm's benchmark): per-arm centres
        ``m_k``, ``eta_k ~ Normal(m_k, level_sd)`` (independent) or ``eta_k = m_k + delta_k``,
        ``delta_k ~ Normal(mu, tau)``, ``mu ~ Normal(0, level_sd)`` (hierarchical: pooling of
        the departures from the centres).
    tau_dist, tau_scale
        Prior of the between-arm standard deviation (hierarchical only).
    smoothing_sd
        Standard deviation ``sigma`` of a random-walk step of the baseline log hazard.
    day0_prior
        ``(a, b)`` of the Beta prior of the day-0 event probability (endpoints with day-0 events).
    shape_groups
        ``None`` (one baseline shape shared by all arms) or one group index per arm (in the order
        of ``data.arms``; the groups numbered ``0 .. G-1``, each used): arms of a group share a
        baseline shape, the groups' shapes are independent random walks (e.g. intensive versus
        low-intensity regimens).
    """

    kind: Literal["hierarchical", "independent"] = "hierarchical"
    level_median_days: float | tuple[float, ...] = 180.0
    level_sd: float = 1.5
    tau_dist: TauDist = "half_normal"
    tau_scale: float = 1.0
    smoothing_sd: float = 0.5
    day0_prior: tuple[float, float] = POINT_MASS_PRIOR
    shape_groups: tuple[int, ...] | None = None
    name = "piecewise_exponential"

    def __post_init__(self):
        med = self.level_median_days
        if np.ndim(med) > 1:
            raise ValueError("level_median_days must be a number or one number per arm")
        if np.ndim(med) == 1:
            object.__setattr__(self, "level_median_days", tuple(float(v) for v in med))
        if np.any(~np.isfinite(np.asarray(self.level_median_days, float))) or np.any(
            np.asarray(self.level_median_days, float) <= 0
        ):
            raise ValueError(f"level_median_days must be finite and > 0, got {self.level_median_days}")
        if self.shape_groups is not None:
            groups = tuple(int(g) for g in self.shape_groups)
            if not groups or sorted(set(groups)) != list(range(max(groups) + 1)):
                raise ValueError(f"shape_groups must number the groups 0 .. G-1, each used; got {groups}")
            object.__setattr__(self, "shape_groups", groups)

    @property
    def per_arm_levels(self) -> bool:
        """Whether ``level_median_days`` gives one prior centre per arm."""
        return isinstance(self.level_median_days, tuple)

    @property
    def level_mean(self) -> float | np.ndarray:
        """``log(ln 2 / level_median_days)``: a float, or an array of per-arm centres."""
        if self.per_arm_levels:
            return np.log(np.log(2.0) / np.asarray(self.level_median_days, dtype=float))
        return float(np.log(np.log(2.0) / self.level_median_days))

    def level_means(self, data: SurvivalData) -> np.ndarray:
        """The prior centre ``m_k`` of each arm of ``data``."""
        med = self.level_median_days
        if isinstance(med, tuple) and len(med) != len(data.arms):  # per_arm_levels
            raise ValueError(f"level_median_days has {len(med)} values for {len(data.arms)} arms")
        return np.broadcast_to(np.asarray(self.level_mean, dtype=float), (len(data.arms),)).copy()

    @property
    def n_shape_groups(self) -> int:
        return 1 if self.shape_groups is None else max(self.shape_groups) + 1

    def shape_membership(self, data: SurvivalData) -> np.ndarray:
        """``(arm, shape_group)`` 0/1 matrix: which baseline shape each arm uses."""
        groups = (0,) * len(data.arms) if self.shape_groups is None else self.shape_groups
        if len(groups) != len(data.arms):
            raise ValueError(f"shape_groups has {len(groups)} entries for {len(data.arms)} arms")
        return np.eye(self.n_shape_groups)[list(groups)]

    def _grouped(self, data: SurvivalData) -> bool:
        return self.n_shape_groups > 1 and data.n_intervals > 1

    def cache_key(self, data: SurvivalData) -> tuple:
        """Key of the compiled model: everything that changes the model's structure."""
        return (
            self.name,
            self.kind,
            self.tau_dist,
            data.arms,
            data.n_intervals,
            ("per_arm_levels", self.per_arm_levels),
            ("shape_groups", self.n_shape_groups if self._grouped(data) else 1),
        )

    def data_dict(self, data: SurvivalData) -> dict[str, np.ndarray]:
        level_mean = self.level_means(data) if self.per_arm_levels else self.level_mean
        d = {
            "events": np.asarray(data.events, dtype=float),
            "exposure": np.asarray(data.exposure, dtype=float),
            "level_mean": np.asarray(level_mean, dtype=float),
            "level_sd": np.asarray(self.level_sd, dtype=float),
        }
        if self.kind == "hierarchical":
            d["tau_scale"] = np.asarray(self.tau_scale, dtype=float)
            d["centring"] = self.centring(data)
        if data.n_intervals > 1:
            d["smoothing_sd"] = np.asarray(self.smoothing_sd, dtype=float)
            if self._grouped(data):
                d["shape_membership"] = self.shape_membership(data)
        return d

    @staticmethod
    def centring(data: SurvivalData) -> np.ndarray:
        """Per-arm centring weight ``w_k = d_k / (d_k + 100)`` of the sampler's parametrisation."""
        d = np.asarray(data.events, dtype=float).sum(axis=1)
        return d / (d + CENTRING_EVENTS)

    def build(self, data: SurvivalData) -> pm.Model:
        """The PyMC model (data in ``pm.Data`` containers so a compiled model can be reused)."""
        d = self.data_dict(data)
        n_int = data.n_intervals
        grouped = self._grouped(data)
        coords: dict[str, list] = {"arm": list(data.arms), "interval": interval_labels(data.cut_points)}
        if n_int > 1:
            coords["step"] = coords["interval"][1:]
        if grouped:
            coords["shape_group"] = list(range(self.n_shape_groups))
        with pm.Model(coords=coords) as model:
            events = pm.Data("events", d["events"], dims=("arm", "interval"))
            exposure = pm.Data("exposure", d["exposure"], dims=("arm", "interval"))
            if self.per_arm_levels:
                level_mean = pm.Data("level_mean", d["level_mean"], dims="arm")
            else:
                level_mean = pm.Data("level_mean", d["level_mean"])
            level_sd = pm.Data("level_sd", d["level_sd"])
            if self.kind == "hierarchical":
                tau_scale = pm.Data("tau_scale", d["tau_scale"])
                w = pm.Data("centring", d["centring"], dims="arm")
                if self.per_arm_levels:
                    # pooling relative to each arm's centre; partially non-centred in delta
                    mu = pm.Normal("mu", 0.0, level_sd)
                    tau = _tau_rv(self.tau_dist, tau_scale)
                    raw = pm.Normal("delta_raw", w * mu, tau**w, dims="arm")
                    delta = pm.Deterministic("delta", mu + tau ** (1.0 - w) * (raw - w * mu), dims="arm")
                    eta = pm.Deterministic("eta", level_mean + delta, dims="arm")
                else:
                    mu = pm.Normal("mu", level_mean, level_sd)
                    tau = _tau_rv(self.tau_dist, tau_scale)
                    raw = pm.Normal("eta_raw", w * mu, tau**w, dims="arm")
                    eta = pm.Deterministic("eta", mu + tau ** (1.0 - w) * (raw - w * mu), dims="arm")
            elif self.kind == "independent":
                eta = pm.Normal("eta", level_mean, level_sd, dims="arm")
            else:
                raise ValueError(f"unknown survival model kind {self.kind!r}")
            if n_int > 1 and grouped:
                sigma = pm.Data("smoothing_sd", d["smoothing_sd"])
                member = pm.Data("shape_membership", d["shape_membership"], dims=("arm", "shape_group"))
                eps = pm.Normal("eps", 0.0, 1.0, dims=("shape_group", "step"))
                g = pt.concatenate(
                    [pt.zeros((self.n_shape_groups, 1)), pt.cumsum(sigma * eps, axis=1)], axis=1
                )
                gamma = pm.Deterministic(
                    "gamma", g - pt.mean(g, axis=1, keepdims=True), dims=("shape_group", "interval")
                )
                log_h = eta[:, None] + pt.dot(member, gamma)
            else:
                if n_int > 1:
                    sigma = pm.Data("smoothing_sd", d["smoothing_sd"])
                    eps = pm.Normal("eps", 0.0, 1.0, dims="step")
                    g = pt.concatenate([pt.zeros(1), pt.cumsum(sigma * eps)])
                    gamma = pm.Deterministic("gamma", g - pt.mean(g), dims="interval")
                else:
                    gamma = pt.zeros(1)
                log_h = eta[:, None] + gamma[None, :]
            pm.Potential("likelihood", pt.sum(events * log_h - pt.exp(log_h) * exposure))
        return model

    def fit(self, data: SurvivalData, *, seed: int, settings: SamplerSettings) -> az.InferenceData:
        """Fit with NUTS, then add the day-0 point mass (exact draws) and derived quantities."""
        idata = sample_nuts(
            self.build(data),
            cache_key=self.cache_key(data),
            data=self.data_dict(data),
            settings=settings,
            seed=seed,
        )
        post = idata["posterior"]
        eta = post["eta"].transpose("chain", "draw", "arm").values
        if self._grouped(data) and self.shape_groups is not None:  # groups given when grouped
            gamma = post["gamma"].transpose("chain", "draw", "shape_group", "interval").values
            hazard = np.exp(eta[..., :, None] + gamma[..., list(self.shape_groups), :])
        else:
            if "gamma" in post:
                gamma = post["gamma"].transpose("chain", "draw", "interval").values
            else:
                gamma = np.zeros(eta.shape[:2] + (1,))
            hazard = np.exp(eta[..., :, None] + gamma[..., None, :])
        pi = None
        if data.has_day0:
            a, b = self.day0_prior
            d0 = np.asarray(data.day0_events, dtype=float)
            n0 = np.asarray(data.n, dtype=float)
            rng = np.random.default_rng([seed, 2])
            pi = rng.beta(a + d0, b + n0 - d0, size=eta.shape)
            post["prob_day0_event"] = (("chain", "draw", "arm"), pi)
        labels = interval_labels(data.cut_points)
        post = post.assign_coords(interval=labels, horizon=list(HORIZONS))
        post["hazard"] = (("chain", "draw", "arm", "interval"), hazard)
        post["median"] = (
            ("chain", "draw", "arm"),
            median_survival(hazard, data.cut_points, pi, data.point_mass_days),
        )
        surv = np.stack(
            [
                np.exp(-cumulative_hazard(hazard, data.cut_points, h)) * (1.0 if pi is None else 1.0 - pi)
                for h in HORIZONS
            ],
            axis=-1,
        )
        post["survival"] = (("chain", "draw", "arm", "horizon"), surv)
        post.attrs = {"model": f"{self.name}/{self.kind}"}
        out = az.InferenceData(posterior=post, sample_stats=idata["sample_stats"])
        out.add_groups(constant_data=data.constant_data())
        return out


def model_from_config(cfg: Any) -> PiecewiseExponential:
    """Build the model from a config ``survival.endpoints.<name>.model`` block."""
    common = dict(
        kind=cfg.kind,
        level_median_days=cfg.level.median_days,
        level_sd=cfg.level.sd,
        smoothing_sd=cfg.smoothing_sd,
    )
    if cfg.kind == "hierarchical":
        return PiecewiseExponential(**common, tau_dist=cfg.tau.dist, tau_scale=cfg.tau.scale)
    return PiecewiseExponential(**common)
