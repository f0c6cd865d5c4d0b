"""Running NUTS on a PyMC model with either nutpie (default) or PyMC's own sampler.

Both backends return an :class:`arviz.InferenceData` with ``posterior`` and ``sample_stats``
(with a boolean ``diverging``), with transformed helper variables (``*__``) dropped. Compiled
nutpie models are cached per process and reused with new data (``with_data``), so fitting five
endpoints with the same model structure compiles once.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any, Literal

import arviz as az
import numpy as np
import pymc as pm

Backend = Literal["nutpie", "pymc"]


@dataclass(frozen=True)
class SamplerSettings:
    """NUTS settings of one fit attempt."""

    backend: Backend = "nutpie"
    chains: int = 4
    draws: int = 2000
    tune: int = 1000
    target_accept: float = 0.9
    cores: int | None = None

    @property
    def n_cores(self) -> int:
        return self.cores or min(self.chains, os.cpu_count() or 1)


def derive_seed(*parts: object) -> int:
    """A 32-bit seed derived deterministically from a base seed and labels (no global state)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "little")


_COMPILED: dict[tuple, Any] = {}


def compiled_keys() -> list[tuple]:
    """The cache keys of the models this process has compiled (nutpie backend)."""
    return list(_COMPILED)


def _clean(idata: az.InferenceData) -> az.InferenceData:
    post = idata["posterior"]
    post = post.drop_vars([v for v in post.data_vars if str(v).endswith("__")])
    stats = idata["sample_stats"]
    keep = [
        v
        for v in (
            "diverging",
            "tree_depth",
            "depth",
            "step_size",
            "n_steps",
            "energy",
            "lp",
            "logp",
            "acceptance_rate",
            "mean_tree_accept",
        )
        if v in stats
    ]
    stats = stats[keep]
    post.attrs = {}
    stats.attrs = {}
    return az.InferenceData(posterior=post, sample_stats=stats)


def sample_nuts(
    model: pm.Model,
    *,
    cache_key: tuple,
    data: dict[str, np.ndarray],
    settings: SamplerSettings,
    seed: int,
) -> az.InferenceData:
    """Sample ``model`` after setting its ``pm.Data`` containers to ``data``.

    Parameters
    ----------
    model
        A model whose data containers are named as the keys of ``data``. With the nutpie backend
        the compiled model is cached under ``cache_key`` and only the data change between calls.
    """
    if settings.backend == "nutpie":
        import nutpie

        compiled = _COMPILED.get(cache_key)
        if compiled is None:
            compiled = nutpie.compile_pymc_model(model)
            _COMPILED[cache_key] = compiled
        compiled = compiled.with_data(**data)
        idata = nutpie.sample(
            compiled,
            draws=settings.draws,
            tune=settings.tune,
            chains=settings.chains,
            cores=settings.n_cores,
            seed=seed,
            target_accept=settings.target_accept,
            save_warmup=False,
            progress_bar=False,
        )
        return _clean(idata)
    if settings.backend == "pymc":
        with model:
            pm.set_data(data)
            idata = pm.sample(
                draws=settings.draws,
                tune=settings.tune,
                chains=settings.chains,
                cores=settings.n_cores,
                random_seed=seed,
                target_accept=settings.target_accept,
                progressbar=False,
                compute_convergence_checks=False,
            )
        return _clean(idata)
    raise ValueError(f"unknown sampler backend {settings.backend!r}; use 'nutpie' or 'pymc'")
