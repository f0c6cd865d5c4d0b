"""How each arm enters the hierarchical / EXNEX model of an endpoint at a look.

Borrowing happens only within the endpoint model's declared exchangeable set
(``borrowing_group``): an arm outside it is always fitted on its own non-exchangeable prior
(EXNEX weight 0), never borrowing from or lending to the group. Descriptive arms are never in a
group (the config refuses it).

Within the group borrowing is configured per arm (``arms.<id>.borrowing``). An arm with fewer
evaluable patients on an endpoint than its ``exchangeable_after`` is fitted with EXNEX prior
weight ``w = 0``: its ``delta_k`` has only its own non-exchangeable prior ``Normal(nex.mean,
nex.sd)``, so its few early patients neither pull the others' estimates (through ``mu`` and
``tau``) nor get pulled towards them. From that count on it is exchangeable with prior weight
``w`` (the arm's ``borrowing.w``, else the endpoint's EXNEX ``w``, else 1 for a ``hierarchical``
endpoint). Late entrants (arms with an ``entry`` block) default to ``exchangeable_after: 10``;
arms present from the start default to 0.

So an endpoint configured ``hierarchical`` is fitted as EXNEX with ``w_k`` in {0, 1} while some
arm is outside its group or in its borrowing burn-in (identical to the hierarchical model for the
arms with ``w_k = 1``), and as the plain hierarchical model otherwise. Independent endpoints
never borrow.
"""

from __future__ import annotations

import dataclasses

from adaptive.config import Design
from adaptive.derive import DerivedData
from models.binary import Exnex, model_from_config


def model_for_look(design: Design, derived: DerivedData, endpoint: str):
    """The model object to fit for ``endpoint`` at this look and each arm's borrowing state.

    Returns
    -------
    model, info
        ``info`` maps arm -> ``{"in_borrowing_group", "prior_weight_exchangeable",
        "exchangeable_after", "in_borrowing_burn_in"}`` (empty for independent endpoints).
    """
    cfg = design.endpoints[endpoint].model
    base = model_from_config(cfg)
    if cfg.kind in ("independent", "independent_logit_normal"):
        return base, {}
    group = set(design.borrowing_group(endpoint))
    comps = getattr(cfg, "components", None) or None
    # the prior probability of exchangeability an arm in the group has (summed over components)
    default_w = sum(c.w for c in comps) if comps else (cfg.w if cfg.kind == "exnex" else 1.0)
    scale: list[float] = []  # per arm: 1 keeps the configured weights, 0 makes the arm non-exchangeable
    weights: list[float] = []
    info: dict[str, dict] = {}
    for arm_id in design.modelled_arms:
        arm = design.arm(arm_id)
        n = derived.counts[endpoint][arm_id].n_evaluable
        after = arm.exchangeable_after
        w_arm = arm.borrowing.w if arm.borrowing is not None and arm.borrowing.w is not None else default_w
        in_group = arm_id in group
        burn = in_group and n < after
        w = float(w_arm) if in_group and not burn else 0.0
        weights.append(w)
        scale.append(w / default_w if default_w > 0 else 0.0)
        info[arm_id] = {
            "in_borrowing_group": in_group,
            "prior_weight_exchangeable": w,
            "exchangeable_after": after,
            "in_borrowing_burn_in": burn,
        }
    if comps:
        if all(f == 1.0 for f in scale):
            return base, info
        # each component's weight scaled per arm (0 outside the group or in the burn-in)
        components = tuple(
            dataclasses.replace(c, w=tuple(c.w * f for f in scale)) for c in base.ex_components()
        )
        return dataclasses.replace(base, components=components), info
    if cfg.kind == "exnex" and all(w == cfg.w for w in weights):
        return base, info
    if cfg.kind == "hierarchical" and all(w == 1.0 for w in weights):
        return base, info
    # some arm outside the group or in its burn-in: EXNEX with per-arm weights (0 = on its own)
    nex = cfg.nex
    model = Exnex(
        mu_mean=cfg.mu.mean,
        mu_sd=cfg.mu.sd,
        tau_dist=cfg.tau.dist,
        tau_scale=cfg.tau.scale,
        tau_shape=cfg.tau.shape,
        nex_mean=nex.mean,
        nex_sd=nex.sd,
        w=tuple(weights),
    )
    return model, info


def describe(info: dict, arm_label: str) -> str | None:
    """A sentence for an arm in its borrowing burn-in (``None`` when it borrows normally)."""
    if not info or not info.get("in_borrowing_burn_in"):
        return None
    return (
        f"{arm_label} is fitted on its own prior (EXNEX weight 0) until it has "
        f"{info['exchangeable_after']} evaluable patients; it does not borrow yet."
    )
