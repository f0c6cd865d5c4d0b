"""Compiled per-patient loops of the simulator: enrolment between looks, counts at a look.

**Enrolment** (:func:`enrol`): routing, allocation, arm closure at ``max_n``.

:meth:`adaptive.simulate.engine._Chunk.run` hands every live trial to :func:`enrol` and gets
back, per trial, the patients enrolled up to its next look (a calendar day or an enrolment
count) or until its enrolment ends. Patients are taken one at a time in arrival order, exactly
as the protocol does:

* enrolment ends (the trial is ``done``) when the next patient arrives after
  ``max_duration_days`` or no patient is left to draw, when no arm is open or queued, or when
  ``max_patients`` are enrolled; the end is the last arrival (or the last look, when no arm is
  left and no patient arrived after it: an arm that fills up between looks ends enrolment at
  its last patient's arrival, whose outcomes the final analysis waits for);
* a patient enters the first routing step whose condition holds (``match``); if none of that
  step's arms is open the patient is not enrolled, unless the step passes its patients on
  (``if_no_open_arm: next_step``), when routing goes on to the next step; randomized steps draw
  among their open arms with the current allocation probabilities of the cohort's rule (queued
  arms that joined the step get an equal share of the rule arms' total); unrandomized steps draw
  uniformly among their open arms; a patient counts as randomized only when a randomized step
  had at least two open arms to choose from; a patient no step can take is not enrolled;
* an arm closes to enrolment (``COMPLETE``) once it has ``max_n`` patients;
* a look triggered by the enrolment count happens at the arrival of the patient who reached it.

Trials are independent, so they are processed one after another; the random numbers come in
with the patients (``arrival``, ``u_assign``), so the result does not depend on the order.

**Counts** (:func:`count_known`): evaluable patients and responders per arm as of a look's day;
(:func:`survival_counts`): events and days at risk per arm and interval of a survival endpoint;
(:func:`efs_counts`, :func:`rfs_counts`): the same for ELN 2022 EFS (with its treatment failures,
the point mass, and its pending patients) and RFS, as :mod:`adaptive.survival_data` derives them.

**Outcomes** (:func:`draw_outcomes`): each newly enrolled patient's response category, death,
response and relapse days and the binary endpoints with the days they become known, in one pass
(the numpy version of the same laws, :meth:`adaptive.simulate.patients.Patients.draw_reference`,
is the tests' reference).
"""

from __future__ import annotations

import numba
import numpy as np

#: arm status codes shared with :mod:`adaptive.simulate.engine`: enrolling, not yet open, accrual
#: complete (open, follow-up only), enrolment suspended (may resume)
ACTIVE, QUEUED, COMPLETE, SUSPENDED = 0, 1, 2, 3
NO_LOOK = np.iinfo(np.int64).max


@numba.njit(cache=True, nogil=True)
def _assign(t, p, status, u, step_arms, step_n, step_rand, step_pass, rule_of_step, rule_arms, rule_n,
            others, others_n, alloc, match_tp, w, cand):  # fmt: skip
    """Arm of patient ``p`` of trial ``t`` (-1: not enrolled) and whether randomized."""
    for si in range(step_arms.shape[0]):
        if not match_tp[si]:
            continue
        has_open = False
        for a in range(step_n[si]):
            if status[t, step_arms[si, a]] == ACTIVE:
                has_open = True
                break
        if not has_open:
            if step_pass[si]:
                continue
            return -1, False
        ri = rule_of_step[si]
        m = 0
        if ri >= 0:
            total = 0.0
            for a in range(rule_n[ri]):
                arm = rule_arms[ri, a]
                w[m] = alloc[ri, t, a] if status[t, arm] == ACTIVE else 0.0
                cand[m] = arm
                total += w[m]
                m += 1
            if others_n[si] > 0:
                share = max(total, 1e-12) / rule_n[ri]
                for a in range(others_n[si]):
                    arm = others[si, a]
                    w[m] = share if status[t, arm] == ACTIVE else 0.0
                    cand[m] = arm
                    m += 1
            total = 0.0
            for a in range(m):
                total += w[a]
            if not total > 0.0:
                for a in range(m):
                    w[a] = 1.0 if status[t, cand[a]] == ACTIVE else 0.0
        else:
            for a in range(step_n[si]):
                arm = step_arms[si, a]
                w[m] = 1.0 if status[t, arm] == ACTIVE else 0.0
                cand[m] = arm
                m += 1
        total = 0.0
        choices = 0
        for a in range(m):
            total += w[a]
            if w[a] > 0.0:
                choices += 1
        cdf = 0.0
        pick = 0
        for a in range(m):
            cdf += w[a] / total
            if u >= cdf:
                pick += 1
        if pick > m - 1:
            pick = m - 1
        # randomized only when there was a choice: a randomized step with one arm left open assigns
        return cand[pick], step_rand[si] and choices >= 2
    return -1, False


@numba.njit(cache=True, nogil=True)
def enrol(rows, ptr, cap, n_patients, max_duration, max_patients, max_n,
          arrival, match, u_assign, status, enrolled, n_rand, total, arm_of, randomized,
          done, end_time, last_time, next_look_time, next_look_count,
          step_arms, step_n, step_rand, step_pass, rule_of_step, rule_arms, rule_n, others, others_n,
          alloc):  # fmt: skip
    """Enrol the patients of every trial in ``rows`` up to its next look (updates the state arrays).

    Returns ``True`` when some trial needs more patients drawn than the ``cap`` drawn so far
    (the caller draws the next block and calls again).
    """
    n_arms = status.shape[1]
    width = max(step_arms.shape[1] + others.shape[1], 1)
    w = np.empty(width)
    cand = np.empty(width, np.int64)
    need_more = False
    limit = min(n_patients, cap)
    for t in rows:
        while True:
            p = ptr[t]
            if p >= cap and cap < n_patients:
                need_more = True
                break
            arr = arrival[t, min(p, cap - 1)]
            out_of_time = p >= limit or arr > max_duration
            no_arm = True
            for k in range(n_arms):
                if status[t, k] == ACTIVE or status[t, k] == QUEUED or status[t, k] == SUSPENDED:
                    no_arm = False
                    break
            if out_of_time or no_arm or total[t] >= max_patients:
                done[t] = True
                last = arrival[t, p - 1] if p > 0 else 0.0
                if no_arm:
                    end_time[t] = max(last_time[t], min(last, max_duration))
                else:
                    end_time[t] = min(last, max_duration)
                break
            if not (arr <= next_look_time[t] and total[t] < next_look_count[t]):
                break
            arm, rand = _assign(t, p, status, u_assign[t, p], step_arms, step_n, step_rand, step_pass,
                                rule_of_step, rule_arms, rule_n, others, others_n, alloc, match[t, p], w,
                                cand)  # fmt: skip
            ptr[t] = p + 1
            if arm >= 0:
                arm_of[t, p] = arm
                randomized[t, p] = rand
                enrolled[t, arm] += 1
                if rand:
                    n_rand[t, arm] += 1
                total[t] += 1
                if enrolled[t, arm] >= max_n[arm]:
                    status[t, arm] = COMPLETE
            if total[t] >= next_look_count[t]:
                next_look_time[t] = arrival[t, p]
                next_look_count[t] = NO_LOOK
    return need_more


@numba.njit(cache=True, nogil=True)
def count_known(rows, upto, arm_of, known, value, when, n_arms):
    """Evaluable patients (outcome known by ``when[i]``) and responders per arm, ``(len(rows), K)``.

    Patients ``0 .. upto[t] - 1`` of each trial are looked at; responders are the known
    patients' ``value`` (0/1) summed.
    """
    n = np.zeros((rows.shape[0], n_arms), np.int64)
    y = np.zeros((rows.shape[0], n_arms), np.int64)
    for i in range(rows.shape[0]):
        t = rows[i]
        for p in range(upto[t]):
            arm = arm_of[t, p]
            if arm >= 0 and known[t, p] <= when[i]:
                n[i, arm] += 1
                if value[t, p] > 0.5:
                    y[i, arm] += 1
    return n, y


@numba.njit(cache=True, nogil=True)
def enrolled_between(rows, before, upto, arm_of):
    """The patients enrolled on an arm among ``before[i] .. upto[rows[i]] - 1`` of each trial.

    Returns ``(i, p)``: positions in ``rows`` and patient indices, in the order of
    ``np.nonzero`` of the same mask (the patients whose outcomes a round of enrolment draws).
    """
    count = 0
    for i in range(rows.shape[0]):
        t = rows[i]
        for p in range(before[i], upto[t]):
            if arm_of[t, p] >= 0:
                count += 1
    out_i = np.empty(count, np.int64)
    out_p = np.empty(count, np.int64)
    j = 0
    for i in range(rows.shape[0]):
        t = rows[i]
        for p in range(before[i], upto[t]):
            if arm_of[t, p] >= 0:
                out_i[j] = i
                out_p[j] = p
                j += 1
    return out_i, out_p


@numba.njit(cache=True, nogil=True)
def count_known_randomized(rows, upto, arm_of, known, value, when, n_arms, randomized, arrival, since):
    """As :func:`count_known`, among randomized patients who arrived on or after ``since[i]``.

    The concurrently randomized patients of a comparison: ``since`` is the day from which every
    compared arm was open (per trial of ``rows``).
    """
    n = np.zeros((rows.shape[0], n_arms), np.int64)
    y = np.zeros((rows.shape[0], n_arms), np.int64)
    for i in range(rows.shape[0]):
        t = rows[i]
        for p in range(upto[t]):
            arm = arm_of[t, p]
            if arm >= 0 and randomized[t, p] and arrival[t, p] >= since[i] and known[t, p] <= when[i]:
                n[i, arm] += 1
                if value[t, p] > 0.5:
                    y[i, arm] += 1
    return n, y


@numba.njit(cache=True, nogil=True)
def _at_risk(events, exposure, r, a, time, is_event, cuts):
    """Add one patient's days at risk on ``[0, time)`` (and its event at ``time``) per interval."""
    n_int = cuts.shape[0] - 1
    for j in range(n_int):
        lo = cuts[j]
        if time <= lo:
            break
        hi = cuts[j + 1] if j < n_int - 1 else np.inf
        exposure[r, a, j] += min(time, hi) - lo
    if is_event:
        j = 0
        while j < n_int - 1 and time >= cuts[j + 1]:
            j += 1
        events[r, a, j] += 1.0


@numba.njit(cache=True, nogil=True)
def survival_counts(rows, upto, arm_of, arrival, event_time, dropout, when, follow_up, cuts, n_arms):
    """Events and days at risk per arm and interval as of each trial's look, ``(len(rows), K, J)``.

    As :mod:`adaptive.survival_data` derives a time-to-event endpoint at a cutoff: time runs from
    enrolment; follow-up ends at the look (``when``), at ``follow_up`` days after enrolment or at
    dropout, whichever comes first; an event on or before that is an event, the rest are
    censored. Interval ``j`` is ``[cuts[j], cuts[j + 1])``, the last one open-ended (as
    :func:`models.survival.split_exposure`).
    """
    n_int = cuts.shape[0] - 1
    events = np.zeros((rows.shape[0], n_arms, n_int))
    exposure = np.zeros((rows.shape[0], n_arms, n_int))
    for r in range(rows.shape[0]):
        t = rows[r]
        for p in range(upto[t]):
            a = arm_of[t, p]
            if a < 0 or arrival[t, p] > when[r]:
                continue
            obs = min(when[r] - arrival[t, p], follow_up, dropout[t, p])
            is_event = event_time[t, p] <= obs
            _at_risk(events, exposure, r, a, event_time[t, p] if is_event else obs, is_event, cuts)
    return events, exposure


@numba.njit(cache=True, nogil=True)
def efs_counts(rows, upto, arm_of, arrival, death, dropout, relapse, response_day, category, landmark,
               when, follow_up, cuts, n_arms, failure_day):  # fmt: skip
    """ELN 2022 EFS as of each trial's look: the point mass and the continuous part per arm.

    As :func:`adaptive.survival_data.survival_patient` derives it from the patient's record as of
    the look (``tau`` days after enrolment; a response is on record once assessed, alive and
    followed, ``response_day <= min(death, dropout, tau)``; a death once ``death <= min(dropout,
    tau)``): pending (left out) before the arm's ``landmark``; then a CR/CRi (``category`` 0, 1)
    on record by the landmark is followed from enrolment to relapse or death (censored at the
    look, ``follow_up`` days after enrolment or dropout); an NE on record, alive as far as known,
    is censored on ``failure_day``; any other response on record (PR, NR, a CR/CRi after the
    landmark) or a death on record is a treatment failure (the point mass); neither is pending
    (overdue: not yet assessed, or lost before assessment).

    Returns
    -------
    events, exposure
        ``(len(rows), K, J)`` of the continuous part (the patients without a point-mass event).
    n0, d0
        ``(len(rows), K)``: patients whose failure status is known (pending ones and NEs censored on
        the failure day left out) and treatment failures.
    """
    n_int = cuts.shape[0] - 1
    events = np.zeros((rows.shape[0], n_arms, n_int))
    exposure = np.zeros((rows.shape[0], n_arms, n_int))
    n0 = np.zeros((rows.shape[0], n_arms), np.int64)
    d0 = np.zeros((rows.shape[0], n_arms), np.int64)
    for r in range(rows.shape[0]):
        t = rows[r]
        for p in range(upto[t]):
            a = arm_of[t, p]
            if a < 0:
                continue
            tau = when[r] - arrival[t, p]
            if tau < landmark[a]:
                continue  # pending: the landmark has not passed
            dth, drop, resp = death[t, p], dropout[t, p], response_day[t, p]
            on_record = resp <= dth and resp <= drop and resp <= tau
            died = dth <= drop and dth <= tau
            cat = category[t, p]
            if on_record and cat <= 1 and resp <= landmark[a]:
                obs = min(tau, follow_up, drop)
                ev_time = min(relapse[t, p], dth)
                is_event = ev_time <= obs
                time = ev_time if is_event else max(obs, 0.0)
                if is_event and time == 0.0:
                    time = 0.5  # an event on day 0 gets half a day at risk (survival_data)
                n0[r, a] += 1
                _at_risk(events, exposure, r, a, time, is_event, cuts)
            elif on_record and cat == 3 and not died:
                # alive and not evaluable: censored on the failure day, its failure status unknown
                # (not in n0: models.survival.SurvivalData)
                _at_risk(events, exposure, r, a, failure_day, False, cuts)
            elif on_record or died:
                n0[r, a] += 1
                d0[r, a] += 1
    return events, exposure, n0, d0


@numba.njit(cache=True, nogil=True)
def rfs_counts(rows, upto, arm_of, arrival, death, dropout, relapse, response_day, category, when,
               follow_up, cuts, n_arms):  # fmt: skip
    """RFS as of each trial's look: events and days at risk per arm and interval, ``(len(rows), K, J)``.

    As :func:`adaptive.survival_data.survival_patient`: the patients with a CR/CRi (``category``
    0, 1) on record by the look (``response_day <= min(death, dropout, tau)``, ``tau`` days since
    enrolment), from the response day to relapse or death; follow-up ends at the look, at
    ``follow_up`` days after *enrolment* or at dropout.
    """
    n_int = cuts.shape[0] - 1
    events = np.zeros((rows.shape[0], n_arms, n_int))
    exposure = np.zeros((rows.shape[0], n_arms, n_int))
    for r in range(rows.shape[0]):
        t = rows[r]
        for p in range(upto[t]):
            a = arm_of[t, p]
            if a < 0 or category[t, p] > 1:
                continue
            tau = when[r] - arrival[t, p]
            dth, drop, resp = death[t, p], dropout[t, p], response_day[t, p]
            if not (resp <= dth and resp <= drop and resp <= tau):
                continue
            obs = min(tau, follow_up, drop)
            ev_time = min(relapse[t, p], dth)
            is_event = ev_time <= obs
            time = ev_time - resp if is_event else max(obs - resp, 0.0)
            if is_event and time == 0.0:
                time = 0.5
            _at_risk(events, exposure, r, a, time, is_event, cuts)
    return events, exposure


# ============================================================================= outcomes
@numba.njit(cache=True, nogil=True)
def death_time(m30, m60, median, u):
    """Days to death of a patient with uniform ``u``: the piecewise-constant hazard of the arm.

    Constant hazards on days 0-30 and 30-60 that give the arm's 30- and 60-day mortality, then
    one that puts the median survival at ``median`` days (:mod:`adaptive.scenario`).
    """
    s = 1.0 - u
    if s >= 1.0 - m30:
        return -np.log(s) / (-np.log(1.0 - m30) / 30.0)
    if s >= 1.0 - m60:
        h2 = max(-np.log((1.0 - m60) / (1.0 - m30)) / 30.0, 1e-12)
        return 30.0 - np.log(s / (1.0 - m30)) / h2
    return 60.0 - np.log(s / (1.0 - m60)) / (np.log(2.0 * (1.0 - m60)) / (median - 60.0))


@numba.njit(cache=True, nogil=True)
def survival_prob(m30, m60, median, t):
    """``P(death time > t)`` under :func:`death_time`'s hazard."""
    if t <= 30:
        return np.exp(-(-np.log(1.0 - m30) / 30.0) * t)
    if t <= 60:
        return (1 - m30) * np.exp(-(-np.log((1.0 - m60) / (1.0 - m30)) / 30.0) * (t - 30))
    return (1 - m60) * np.exp(-(np.log(2.0 * (1.0 - m60)) / (median - 60.0)) * (t - 60))


@numba.njit(cache=True, nogil=True)
def draw_outcomes(rows, p, arm, t_arr, cr, cri, pr, ne, m30, m60, median, resp_lo, resp_hi, landmark,
                  mrd, median_relapse, u_resp, u_death, u_delay, u_mrd, u_relapse, death,
                  crc_value, crc_known, orr_value, orr_known, mrd_value, mrd_known,
                  m30_value, m30_known, m60_value, m60_known, need, category, response_day, relapse,
                  truth_crc):  # fmt: skip
    """Outcomes of patient ``p[i]`` of trial ``rows[i]`` on arm ``arm[i]`` and the days they are known.

    ``cr``, ``cri``: the patient's CR and CRi probabilities (the arm's, shifted by any calendar
    trend); the other laws are the arm's (indexed by ``arm``). Each binary endpoint's value (0/1)
    and the day it is known go to ``*_value`` and ``*_known``; ``need`` says which are written
    (orr, mrd_negative_cr, mortality_30d, mortality_60d, then the relapse-based endpoints'
    ``category``, ``response_day`` and ``relapse``); CRc always is. As
    :func:`adaptive.derive.derive_patient`: a response counts when the patient is alive on its
    day and it comes by the arm's landmark, and every response endpoint is known at the
    landmark, whatever the outcome (counting early outcomes earlier would bias interim looks).
    """
    for i in range(rows.shape[0]):
        t, q, k = rows[i], p[i], arm[i]
        c1 = cr[i]
        c2 = c1 + cri[i]
        total = c2 + pr[k] + ne[k]
        scale = 1.0 / total if total > 1.0 else 1.0
        u = u_resp[t, q]
        cat = 0  # 0 CR, 1 CRi, 2 PR, 3 NE, 4 NR
        for c in (c1 * scale, c2 * scale, (c2 + pr[k]) * scale, (c2 + pr[k] + ne[k]) * scale):
            if u >= c:
                cat += 1
        dth = death_time(m30[k], m60[k], median[k], u_death[t, q])
        death[t, q] = dth
        day = resp_lo[k] + np.floor(u_delay[t, q] * (resp_hi[k] - resp_lo[k] + 1))
        lm = landmark[k]
        alive = dth >= day and day <= lm
        crc = cat <= 1 and alive
        at_landmark = t_arr[i] + lm
        crc_value[t, q] = crc
        crc_known[t, q] = at_landmark
        if need[0]:
            orr_value[t, q] = cat <= 2 and alive
            orr_known[t, q] = at_landmark
        if need[1]:  # follows CRc (the MRD status comes with the response)
            mrd_value[t, q] = crc and u_mrd[t, q] < mrd[k]
            mrd_known[t, q] = at_landmark
        if need[2]:
            m30_value[t, q] = dth <= 30.0
            m30_known[t, q] = t_arr[i] + min(dth, 30.0)
        if need[3]:
            m60_value[t, q] = dth <= 60.0
            m60_known[t, q] = t_arr[i] + min(dth, 60.0)
        if need[4]:  # relapse among CR/CRi: exponential from the response day (as adaptive.synth)
            category[t, q] = cat
            response_day[t, q] = day
            rel = day - np.log1p(-u_relapse[t, q]) * (median_relapse[k] / np.log(2.0))
            relapse[t, q] = rel if cat <= 1 else np.inf
        # the patient's true probability of counting as a CRc responder (alive at assessment)
        truth_crc[t, q] = c2 * scale * survival_prob(m30[k], m60[k], median[k], day) if day <= lm else 0.0


@numba.njit(cache=True, nogil=True)
def arm_sums(values, arm_of, upto, n_arms):
    """Per trial and arm, the sum of ``values`` over its patients and their number, ``(T, K)`` each.

    Patients ``0 .. upto[t] - 1`` in enrolment order, so the result does not depend on how many
    patient columns the arrays have (chunking).
    """
    total = np.zeros((values.shape[0], n_arms))
    cnt = np.zeros((values.shape[0], n_arms), np.int64)
    for t in range(values.shape[0]):
        for p in range(upto[t]):
            a = arm_of[t, p]
            if a >= 0:
                total[t, a] += values[t, p]
                cnt[t, a] += 1
    return total, cnt
