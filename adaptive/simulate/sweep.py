"""`adaptive simulate --sweep KEY=V1,V2,...`: one study per value of a config or scenario setting.

A sensitivity sweep reruns the whole simulation study (every scenario, same seed: common random
numbers, so differences between values are not Monte Carlo noise of independent runs) with one
setting changed, and reports the values side by side.

``KEY`` is a dotted path into the config's YAML (``rules.futility_os.threshold``: list items
with an ``id``, such as rules, are addressed by it; ``arms.arm5.max_n``;
``randomization.0.burn_in``), or, prefixed ``scenario.``, into every scenario's YAML
(``scenario.accrual_per_month``, ``scenario.arms.arm5.median_os_days``). Values are read as YAML
scalars (``0.05``, ``true``, ``[28, 150]``). A path that does not exist is an error naming the
missing key: a sweep never adds a setting the file does not have.

Output (one new folder, written atomically): ``sweep.json`` (the key, the values and per value
the studies' key characteristics), ``sweep.csv`` (one row per value x scenario x arm), and per
value a folder ``value-<i>/`` with the changed ``config.yaml`` and scenarios and the complete
study (``oc.json``, ``oc.csv``, ``trials.parquet``) of :func:`adaptive.simulate.study.simulate_study`.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from adaptive.exceptions import ConfigError, Problem
from adaptive.output import atomic_dir, canonical_json

SCHEMA = "rr-aml-adaptive/sweep/v1"
#: per arm, the characteristics put side by side (keys of adaptive.simulate.summary)
ARM_COLUMNS = (
    "prob_graduate",
    "prob_drop_futility",
    "prob_drop_harm",
    "prob_drop_inferior",
    "type_i_error",
    "power",
    "n_mean",
)


@dataclass(frozen=True)
class Sweep:
    """A parsed ``--sweep``: the file it changes (``config`` or ``scenario``), the path, the values."""

    target: str
    path: tuple[str, ...]
    values: tuple[Any, ...]
    text: str

    @property
    def key(self) -> str:
        return ".".join(self.path) if self.target == "config" else "scenario." + ".".join(self.path)


def parse_sweep(text: str) -> Sweep:
    """``KEY=V1,V2,...`` -> :class:`Sweep` (a clear error when malformed)."""
    key, sep, rest = text.partition("=")
    key = key.strip()
    raw = [v.strip() for v in _split_values(rest)] if sep else []
    if not key or not sep or not raw or any(v == "" for v in raw):
        raise ConfigError(
            [
                Problem(
                    "--sweep",
                    f"expected KEY=V1,V2,... (e.g. rules.futility_os.threshold=0.05,0.1), got {text!r}",
                )
            ]
        )
    parts = tuple(key.split("."))
    target = "config"
    if parts[0] == "scenario":
        target, parts = "scenario", parts[1:]
    if not parts or any(p == "" for p in parts):
        raise ConfigError([Problem("--sweep", f"{key!r} is not a dotted path")])
    values = []
    for v in raw:
        try:
            values.append(yaml.safe_load(v))
        except yaml.YAMLError:
            raise ConfigError([Problem("--sweep", f"value {v!r} of {key} is not a YAML scalar")]) from None
    if len(set(map(repr, values))) != len(values):
        raise ConfigError([Problem("--sweep", f"values of {key} repeat: {', '.join(raw)}")])
    return Sweep(target, parts, tuple(values), text)


def _split_values(rest: str) -> list[str]:
    """Split at commas outside brackets, so that ``[28, 150],[21, 56]`` is two values."""
    out, depth, cur = [], 0, ""
    for ch in rest:
        depth += ch in "[{"
        depth -= ch in "]}"
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return out


def set_path(doc: Any, path: tuple[str, ...], value: Any, source: str) -> Any:
    """A copy of ``doc`` with the setting at ``path`` replaced by ``value`` (it must exist)."""
    doc = copy.deepcopy(doc)
    node = doc
    for depth, part in enumerate(path):
        where = ".".join(path[: depth + 1])
        last = depth == len(path) - 1
        if isinstance(node, list):
            idx = next(
                (i for i, x in enumerate(node) if isinstance(x, dict) and str(x.get("id")) == part), None
            )
            if idx is None and part.isdigit() and int(part) < len(node):
                idx = int(part)
            if idx is None:
                ids = [str(x.get("id")) for x in node if isinstance(x, dict) and "id" in x]
                hint = f" (ids: {', '.join(ids)})" if ids else f" (0-{len(node) - 1})"
                raise ConfigError([Problem(source, f"--sweep: no item {part!r} at {where}{hint}")])
            if last:
                node[idx] = value
            else:
                node = node[idx]
        elif isinstance(node, dict):
            if part not in node:
                keys = ", ".join(str(k) for k in node)
                raise ConfigError(
                    [Problem(source, f"--sweep: {where} is not set in this file (keys here: {keys})")]
                )
            if last:
                node[part] = value
            else:
                node = node[part]
        else:
            raise ConfigError([Problem(source, f"--sweep: {where} is inside a value, not a mapping or list")])
    return doc


def _changed_text(path: Path, sweep: Sweep, value: Any) -> str:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return yaml.safe_dump(set_path(doc, sweep.path, value, path.name), sort_keys=False, allow_unicode=True)


def sweep_study(
    config_path: str | Path,
    scenario_paths: list[str | Path],
    sweep: Sweep,
    n_trials: int,
    out: str | Path,
    **study_options,
) -> dict:
    """One :func:`~adaptive.simulate.study.simulate_study` per value, side by side (module docstring)."""
    import pandas as pd

    from adaptive.config import load_config
    from adaptive.scenario import load_scenario
    from adaptive.simulate.study import simulate_study

    config_path = Path(config_path)
    scenario_paths = [Path(p) for p in scenario_paths]
    # every changed file is validated before anything is simulated
    texts = []
    for value in sweep.values:
        if sweep.target == "config":
            cfg = _changed_text(config_path, sweep, value)
            scs = [p.read_text(encoding="utf-8") for p in scenario_paths]
        else:
            cfg = config_path.read_text(encoding="utf-8")
            scs = [_changed_text(p, sweep, value) for p in scenario_paths]
        texts.append((cfg, scs))
    runs = []
    rows = []
    complete = True
    with atomic_dir(out) as tmp:
        for i, (value, (cfg, scs)) in enumerate(zip(sweep.values, texts, strict=True)):
            folder = tmp / f"value-{i}"
            inputs = folder / "inputs"
            inputs.mkdir(parents=True)
            cfg_file = inputs / config_path.name
            cfg_file.write_text(cfg, encoding="utf-8")
            sc_files = []
            for p, text in zip(scenario_paths, scs, strict=True):
                f = inputs / p.name
                f.write_text(text, encoding="utf-8")
                sc_files.append(f)
            design = load_config(cfg_file)
            for f in sc_files:
                load_scenario(f, design)
            report = simulate_study(cfg_file, sc_files, n_trials, folder / "study", **study_options)
            complete &= bool(report["complete"])
            runs.append(
                {
                    "value": value,
                    "folder": f"value-{i}",
                    "config_sha256": hashlib.sha256(cfg.encode("utf-8")).hexdigest(),
                    "scenarios": [_side(sc) for sc in report["scenarios"]],
                }
            )
            for sc in report["scenarios"]:
                for label, s in sc["allocations"].items():
                    for a in s["arms"]:
                        shown = value if isinstance(value, int | float | str) else repr(value)
                        row = {"key": sweep.key, "value": shown, "scenario": sc["scenario"]}
                        row |= {"allocation": label, "arm": a["arm"]}
                        for col in ARM_COLUMNS:
                            x = a.get(col)
                            row[col] = x["estimate"] if isinstance(x, dict) else None
                            row[f"{col}_mcse"] = x["mcse"] if isinstance(x, dict) else None
                        rows.append(row)
            if not report["complete"]:
                break
        result = {
            "schema": SCHEMA,
            "key": sweep.key,
            "sweep": sweep.text,
            "values": list(sweep.values),
            "complete": complete,
            "trials_per_scenario": n_trials,
            "seed": study_options.get("seed", 1),
            "config_file": config_path.name,
            "config_sha256": hashlib.sha256(config_path.read_bytes()).hexdigest(),
            "runs": runs,
        }
        (tmp / "sweep.json").write_text(canonical_json(result), encoding="utf-8")
        pd.DataFrame(rows).to_csv(tmp / "sweep.csv", index=False, lineterminator="\n")
    return result


def _side(scenario: dict) -> dict:
    """The characteristics of one scenario that the side-by-side table shows."""
    out = {"scenario": scenario["scenario"], "allocations": {}}
    for label, s in scenario["allocations"].items():
        out["allocations"][label] = {
            "arms": {a["arm"]: {c: a.get(c) for c in ARM_COLUMNS} for a in s["arms"]},
            "comparisons": {
                c["rule"]: {
                    k: c.get(k) for k in ("prob_select_better", "prob_select_worse", "prob_any_selection")
                }
                for c in s["comparisons"]
            },
            "duration_mean": s["duration_mean"],
            **{k: s[k] for k in ("fwer", "expected_false_graduations", "prob_any_drop_harm") if k in s},
        }
    return out
