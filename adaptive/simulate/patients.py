"""The patients of a chunk of virtual trials: arrivals, routing characteristics, outcomes, counts.

Part of the simulator (:mod:`adaptive.simulate.engine`): per-patient arrays over ``(trial,
patient)``, drawn a block of :data:`BLOCK` patients per trial at a time from each trial's own
random streams (:func:`trial_streams`), and what a look reads from them (evaluable patients and
responders as of a day, the concurrently randomized ones, survival events and days at risk).
Which patients are enrolled on which arm is decided by the enrolment kernel
(:func:`adaptive.simulate.kernels.enrol`), which writes ``ptr``, ``arm_of`` and ``randomized``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import special

from adaptive.simulate.kernels import (
    arm_sums,
    count_known,
    count_known_randomized,
    draw_outcomes,
    efs_counts,
    enrolled_between,
    rfs_counts,
    survival_counts,
)
from adaptive.simulate.rng import trial_uniforms

if TYPE_CHECKING:
    from adaptive.simulate.engine import SimSpec, SurvivalModel

# ============================================================================= randomness
BLOCK = 256  # patients drawn per trial at a time
#: offset of the block numbers of the dropout stream (as :func:`trial_streams`, another stream)
DROPOUT_STREAM = 1 << 40
#: offset of the block numbers of the relapse stream (drawn only for the relapse-based endpoints)
RELAPSE_STREAM = 2 << 40
#: survival endpoints that need each patient's response and relapse (:attr:`Patients.relapse`)
RELAPSE_ENDPOINTS = ("efs", "rfs")


def trial_streams(seed: int, trials: np.ndarray, block: int, size: int = BLOCK) -> dict[str, np.ndarray]:
    """Uniforms for patients ``block * size ... (block + 1) * size - 1`` of the given trials.

    Trial ``i``'s block ``b`` comes from its own generator (SFC64 seeded from ``(seed, i, b)``,
    :mod:`adaptive.simulate.rng`): results do not depend on chunking, on the number of workers,
    or on how many patients other trials needed.
    """
    names = ("gap", "cov", "assign", "resp", "mrd", "death", "delay")
    widths = {"cov": 8}
    cols = np.cumsum([0] + [widths.get(n, 1) for n in names])
    raw = trial_uniforms(seed, trials, block, (size, int(cols[-1])))
    out = {}
    for j, n in enumerate(names):
        v = raw[..., cols[j] : cols[j + 1]]
        out[n] = v[..., 0] if v.shape[-1] == 1 else v  # views: the chunk copies them as it grows
    return out


#: streams used only when a block is drawn (arrival gaps, routing characteristics): not kept
_AT_DRAW = ("gap", "cov")
#: binary outcomes a patient can have (those of the endpoints the design reads are stored)
_OUTCOMES = ("crc", "orr", "mrd_negative_cr", "mortality_30d", "mortality_60d")


def _concatenate(parts: list[np.ndarray], axis: int = 1) -> np.ndarray:
    """``np.concatenate`` of a per-patient array and a new block, without copying the first block."""
    old, new = parts
    return new if old.shape[axis] == 0 else np.concatenate(parts, axis=axis)


# ============================================================================= outcome laws
def _survival(m30, m60, med, t):
    """``P(death time > t)`` of the piecewise-constant hazard of :func:`_vec_death_times`."""
    h1 = -np.log(1.0 - m30) / 30.0
    h2 = -np.log((1.0 - m60) / (1.0 - m30)) / 30.0
    h3 = np.log(2.0 * (1.0 - m60)) / (med - 60.0)
    return np.where(
        t <= 30,
        np.exp(-h1 * t),
        np.where(t <= 60, (1 - m30) * np.exp(-h2 * (t - 30)), (1 - m60) * np.exp(-h3 * (t - 60))),
    )


def response_known_time(t_arr, landmark) -> np.ndarray:
    """Day on which a response endpoint becomes known: the arm's landmark, whatever the outcome.

    As :func:`adaptive.derive.derive_patient`: the endpoint is a response by the landmark and every
    patient counts once the landmark has passed (counting responders or deaths earlier would let
    the timing of an outcome decide whether it is counted at a look, which biases interim
    estimates).
    """
    return t_arr + landmark


def _vec_death_times(m30, m60, med, u):
    s = 1.0 - u
    h1 = -np.log(1.0 - m30) / 30.0
    h2 = np.maximum(-np.log((1.0 - m60) / (1.0 - m30)) / 30.0, 1e-12)
    h3 = np.log(2.0 * (1.0 - m60)) / (med - 60.0)
    return np.where(
        s >= 1.0 - m30,
        -np.log(s) / h1,
        np.where(s >= 1.0 - m60, 30.0 - np.log(s / (1.0 - m30)) / h2, 60.0 - np.log(s / (1.0 - m60)) / h3),
    )


# ============================================================================= the patients
class Patients:
    """Per-patient arrays of a chunk of virtual trials, ``(trials, patients drawn so far)``."""

    def __init__(self, spec: SimSpec, seed: int, trials: np.ndarray):
        self.spec = spec
        t = len(trials)
        self.trials = trials
        self.seed = seed
        self.cap = 0  # patients drawn so far per trial (per-patient arrays grow by blocks)
        self.ptr = np.zeros(t, np.int64)  # next patient of each trial (those before it are enrolled or not)
        self.u: dict[str, np.ndarray] = {}
        self.arrival = np.zeros((t, 0))
        self.match = np.zeros((t, 0, len(spec.steps)), bool)
        self.arm_of = np.zeros((t, 0), np.int64)
        self.randomized = np.zeros((t, 0), bool)
        # outcomes of the endpoints the looks read (per-patient arrays are most of a chunk's
        # memory, and memory traffic most of its time)
        self.value = {e: np.zeros((t, 0)) for e in _OUTCOMES if e in spec.endpoints or e == "crc"}
        self.known = {e: np.zeros((t, 0)) for e in self.value}
        self.truth_crc = np.zeros((t, 0))
        # days from enrolment to death and to dropout (survival endpoints)
        self.death = np.zeros((t, 0))
        self.dropout = np.zeros((t, 0))
        # EFS and RFS: best-response category (0 CR, 1 CRi, 2 PR, 3 NE, 4 NR), the response
        # assessment day and the relapse day (CR/CRi only, else inf), days from enrolment; drawn
        # only when a simulated rule reads one of them
        self.with_relapse = any(ep in RELAPSE_ENDPOINTS for ep in spec.survival)
        self.category = np.zeros((t, 0), np.int64)
        self.response_day = np.zeros((t, 0))
        self.relapse = np.zeros((t, 0))
        self.u_relapse = np.zeros((t, 0))

    # ------------------------------------------------------------------ accrual
    def extend(self) -> None:
        """Draw the next block of patients of every trial."""
        t = len(self.trials)
        block = self.cap // BLOCK
        u = trial_streams(self.seed, self.trials, block)
        gap = 30.4375 / self.spec.scenario.accrual_per_month
        start = self.arrival[:, -1:] if self.cap else np.zeros((t, 1))
        arrival = start + np.cumsum(-np.log1p(-u["gap"]) * gap, axis=1)
        cat = _concatenate
        # the streams read after enrolment, as contiguous arrays (the block's draw of all of them
        # is one interleaved array: the arrival gaps and routing characteristics are used here)
        kept = {n: np.ascontiguousarray(v) for n, v in u.items() if n not in _AT_DRAW}
        self.u = {n: cat([self.u[n], v], axis=1) if self.u else v for n, v in kept.items()}
        self.arrival = cat([self.arrival, arrival], axis=1)
        self.match = cat([self.match, self._routing_matrix(u["cov"])], axis=1)
        self.arm_of = cat([self.arm_of, np.full((t, BLOCK), -1, np.int64)], axis=1)
        self.randomized = cat([self.randomized, np.zeros((t, BLOCK), bool)], axis=1)
        for e in self.value:
            self.value[e] = cat([self.value[e], np.zeros((t, BLOCK))], axis=1)
            self.known[e] = cat([self.known[e], np.full((t, BLOCK), np.inf)], axis=1)
        self.truth_crc = cat([self.truth_crc, np.zeros((t, BLOCK))], axis=1)
        self.death = cat([self.death, np.full((t, BLOCK), np.inf)], axis=1)
        rate = self.spec.scenario.dropout_per_year
        if self.spec.survival and rate > 0:
            # a stream of its own (block numbers far from the patients'), so that the other
            # draws are the same whether or not survival is simulated
            u_drop = trial_uniforms(self.seed, self.trials, block + DROPOUT_STREAM, (BLOCK,))
            dropout = -np.log1p(-u_drop) * 365.25 / rate
        else:
            dropout = np.full((t, BLOCK), np.inf)
        self.dropout = cat([self.dropout, dropout], axis=1)
        if self.with_relapse:
            # a stream of its own, as the dropouts: the other draws do not change
            u_rel = trial_uniforms(self.seed, self.trials, block + RELAPSE_STREAM, (BLOCK,))
            self.u_relapse = cat([self.u_relapse, u_rel], axis=1)
            self.category = cat([self.category, np.full((t, BLOCK), 4, np.int64)], axis=1)
            self.response_day = cat([self.response_day, np.full((t, BLOCK), np.inf)], axis=1)
            self.relapse = cat([self.relapse, np.full((t, BLOCK), np.inf)], axis=1)
        self.cap += BLOCK

    def _routing_matrix(self, u_cov) -> np.ndarray:
        prev = self.spec.scenario.prevalence
        flt3 = u_cov[..., 2] < prev.flt3
        tkd = flt3 & (u_cov[..., 3] < prev.flt3_tkd_given_flt3)
        kt = list(prev.karyotype_risk)
        kp = np.cumsum([prev.karyotype_risk[x] for x in kt])
        kp = kp / kp[-1]
        # each characteristic computed when a routing condition first reads it
        cov = {
            "new_drug_eligible": lambda: u_cov[..., 0] < prev.new_drug_eligible,
            "idh1": lambda: u_cov[..., 1] < prev.idh1,
            "flt3_itd": lambda: flt3 & ~tkd,
            "flt3_tkd": lambda: tkd,
            "intensive_eligible": lambda: u_cov[..., 4] < prev.intensive_eligible,
            "prior_venetoclax_3m": lambda: u_cov[..., 5] < prev.prior_venetoclax_3m,
            # the index of the risk group in ``kt`` (compared with the index of the one asked for)
            "karyotype_risk": lambda: np.minimum(
                np.searchsorted(kp, u_cov[..., 7], side="right"), len(kt) - 1
            ),
        }
        seen: dict[str, np.ndarray] = {}

        def holds(cond):
            out = np.ones(u_cov.shape[:2], bool)
            for c, v in cond.items():
                if c not in seen:
                    seen[c] = cov[c]()
                out &= (
                    (seen[c] == (kt.index(v) if v in kt else -1)) if c == "karyotype_risk" else (seen[c] == v)
                )
            return out

        mats = []
        for s in self.spec.steps:
            m = holds(s["when"])
            if s["when_any"]:
                anym = np.zeros_like(m)
                for alt in s["when_any"]:
                    anym |= holds(alt)
                m &= anym
            mats.append(m)
        return np.stack(mats, axis=-1)

    # ------------------------------------------------------------------ outcomes
    def outcomes_since(self, rows: np.ndarray, before: np.ndarray) -> None:
        """Draw the outcomes of the patients of trials ``rows`` enrolled from patient ``before`` on."""
        i, p = enrolled_between(rows, before, self.ptr, self.arm_of)
        if len(i):
            self.outcomes(rows[i], p, self.arm_of[rows[i], p])

    def outcomes(self, rows, p, arm):
        """Draw the outcomes of patient ``p[i]`` of trial ``rows[i]`` on arm ``arm[i]``."""
        tr = self.spec.truth
        t_arr = self.arrival[rows, p]
        if not np.any(tr["trend"]):
            cr, cri = tr["cr"][arm], tr["cri"][arm]
        else:
            cr, cri = self._drifted(arm, t_arr)
        self.draw(rows, p, arm, t_arr, cr, cri)

    def _drifted(self, arm, t_arr):
        """CR and CRi probabilities shifted on the log-odds scale by the calendar-time trend."""
        tr = self.spec.truth
        shift = tr["trend"][arm] * t_arr / 365.25
        cr = np.where(
            tr["cr"][arm] > 0,
            special.expit(special.logit(np.clip(tr["cr"][arm], 1e-12, 1 - 1e-12)) + shift),
            0.0,
        )
        cri = np.where(
            tr["cri"][arm] > 0,
            special.expit(special.logit(np.clip(tr["cri"][arm], 1e-12, 1 - 1e-12)) + shift),
            0.0,
        )
        return cr, cri

    def draw(self, rows, p, arm, t_arr, cr, cri):
        """Outcomes and the days they become known, given the CR and CRi probabilities.

        One pass of the compiled :func:`adaptive.simulate.kernels.draw_outcomes` (the laws and
        derivation are documented there; ``draw_reference`` is the same in numpy, for the tests).
        """
        tr = self.spec.truth
        none = np.zeros((0, 0))
        v = {e: (self.value[e], self.known[e]) if e in self.value else (none, none) for e in _OUTCOMES}
        need = np.array([e in self.value for e in _OUTCOMES[1:]] + [self.with_relapse])
        u_mrd = self.u["mrd"] if "mrd" in self.u else none
        draw_outcomes(
            rows, p, arm, t_arr, np.broadcast_to(np.asarray(cr, float), rows.shape),
            np.broadcast_to(np.asarray(cri, float), rows.shape), tr["pr"], tr["ne"], tr["m30"],
            tr["m60"], tr["median_os"], tr["resp_lo"], tr["resp_hi"], tr["landmark"], tr["mrd"],
            tr["median_relapse"], self.u["resp"], self.u["death"], self.u["delay"], u_mrd,
            self.u_relapse, self.death, *v["crc"], *v["orr"], *v["mrd_negative_cr"],
            *v["mortality_30d"], *v["mortality_60d"], need, self.category, self.response_day,
            self.relapse, self.truth_crc,
        )  # fmt: skip

    def draw_reference(self, rows, p, arm, t_arr, cr, cri):
        """Outcomes and the days they become known, given the CR and CRi probabilities."""
        tr = self.spec.truth
        pr, ne = tr["pr"][arm], tr["ne"][arm]
        total = cr + cri + pr + ne
        scale = np.where(total > 1.0, 1.0 / total, 1.0)
        cum = np.stack([cr, cr + cri, cr + cri + pr, cr + cri + pr + ne], 1) * scale[:, None]
        cat = (self.u["resp"][rows, p][:, None] >= cum).sum(1)  # 0 CR, 1 CRi, 2 PR, 3 NE, 4 NR
        death = _vec_death_times(
            tr["m30"][arm], tr["m60"][arm], tr["median_os"][arm], self.u["death"][rows, p]
        )
        self.death[rows, p] = death
        lo, hi = tr["resp_lo"][arm], tr["resp_hi"][arm]
        resp_day = lo + np.floor(self.u["delay"][rows, p] * (hi - lo + 1))
        landmark = tr["landmark"][arm]
        # a response by the landmark (alive on the response day), as adaptive.derive.derive_patient
        alive = (death >= resp_day) & (resp_day <= landmark)
        crc = (cat <= 1) & alive
        orr = (cat <= 2) & alive
        # known at the landmark, whatever the outcome
        known = response_known_time(t_arr, landmark)
        need = self.spec.endpoints
        self.value["crc"][rows, p] = crc
        self.known["crc"][rows, p] = known
        if "orr" in need:
            self.value["orr"][rows, p] = orr
            self.known["orr"][rows, p] = known
        if "mrd_negative_cr" in need:  # follows CRc (the MRD status comes with the response)
            self.value["mrd_negative_cr"][rows, p] = crc & (self.u["mrd"][rows, p] < tr["mrd"][arm])
            self.known["mrd_negative_cr"][rows, p] = self.known["crc"][rows, p]
        for e, days in (("mortality_30d", 30.0), ("mortality_60d", 60.0)):
            if e in need:
                self.value[e][rows, p] = death <= days
                self.known[e][rows, p] = t_arr + np.minimum(death, days)
        if self.with_relapse:
            # relapse among CR/CRi: exponential from the response day, as adaptive.synth draws it
            self.category[rows, p] = cat
            self.response_day[rows, p] = resp_day
            scale = tr["median_relapse"][arm] / np.log(2.0)
            rel = resp_day - np.log1p(-self.u_relapse[rows, p]) * scale
            self.relapse[rows, p] = np.where(cat <= 1, rel, np.inf)
        # the patient's true probability of counting as a CRc responder (alive at assessment)
        self.truth_crc[rows, p] = (
            cum[:, 1] * _survival(tr["m30"][arm], tr["m60"][arm], tr["median_os"][arm], resp_day)
        ) * (resp_day <= landmark)

    def true_crc(self) -> np.ndarray:
        """``(T, K)``: the patient-averaged true CRc rate of each arm's patients (nominal if none)."""
        spec = self.spec
        # summed patient by patient in enrolment order: the same bits whatever the chunk's width
        # (numpy's pairwise row sums depend on how many patient columns the chunk drew)
        total, cnt = arm_sums(self.truth_crc, self.arm_of, self.ptr, spec.k)
        nominal = spec.truth["cr"] + spec.truth["cri"]
        return np.where(cnt > 0, total / np.maximum(cnt, 1), nominal[None, :])

    # ------------------------------------------------------------------ counts at a look
    def counts(self, rows, endpoint, when) -> tuple[np.ndarray, np.ndarray]:
        """Evaluable patients and responders per arm, ``(len(rows), K)``, as of ``when``."""
        rows = np.asarray(rows, np.int64)
        when = np.broadcast_to(np.asarray(when, float), rows.shape).copy()
        return count_known(
            rows, self.ptr, self.arm_of, self.known[endpoint], self.value[endpoint], when, self.spec.k
        )

    def counts_randomized(self, rows, endpoint, when, since) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`counts`, among the randomized patients arrived on or after ``since`` (per trial)."""
        when = np.broadcast_to(np.asarray(when, float), rows.shape).copy()
        return count_known_randomized(
            rows, self.ptr, self.arm_of, self.known[endpoint], self.value[endpoint], when,
            self.spec.k, self.randomized, self.arrival, since,
        )  # fmt: skip

    def survival_counts(
        self, rows, when, sm: SurvivalModel, since: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """A survival endpoint's counts as of ``when``: events, days at risk, ``n0``, ``d0``.

        Events and days at risk ``(len(rows), K, J)`` per arm and interval (of the continuous
        part); with a point mass (EFS), the patients counted and the point-mass events per arm
        ``(len(rows), K)``, else ``None``. With ``since`` (per trial of ``rows``), only the
        randomized patients arrived on or after it (the concurrently randomized patients of a
        hazard-ratio rule, as :meth:`counts_randomized` for a superiority rule).
        """
        when = np.broadcast_to(np.asarray(when, float), rows.shape).copy()
        k = self.spec.k
        arm_of = self.arm_of
        if since is not None:
            start = np.full(len(arm_of), np.inf)
            start[rows] = since
            keep = self.randomized & (self.arrival >= start[:, None])
            arm_of = np.where(keep, arm_of, -1).astype(self.arm_of.dtype)
        if sm.name == "efs":
            return efs_counts(
                rows, self.ptr, arm_of, self.arrival, self.death, self.dropout, self.relapse,
                self.response_day, self.category, self.spec.truth["landmark"], when, sm.follow_up,
                sm.cut_points, k, sm.failure_day,
            )  # fmt: skip
        if sm.name == "rfs":
            d, e = rfs_counts(
                rows, self.ptr, arm_of, self.arrival, self.death, self.dropout, self.relapse,
                self.response_day, self.category, when, sm.follow_up, sm.cut_points, k,
            )  # fmt: skip
            return d, e, None, None
        d, e = survival_counts(
            rows, self.ptr, arm_of, self.arrival, self.death, self.dropout, when, sm.follow_up,
            sm.cut_points, k,
        )  # fmt: skip
        return d, e, None, None
