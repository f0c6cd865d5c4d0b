"""Shared fixtures: the bundled config, small sampler settings, hand-built patient tables."""

from __future__ import annotations

import copy
import io
import os
import warnings
from pathlib import Path

import _isolate_caches  # noqa: F401  (first: sets the cache folders before numba/PyTensor load)
import pandas as pd
import pytest
import yaml

from adaptive.config import parse_config
from adaptive.data import OPTIONAL_COLUMNS, REQUIRED_COLUMNS

warnings.filterwarnings("ignore", category=FutureWarning)
# pytest-xdist's workers set COLUMNS=80, which the CLI honours when not writing to a terminal:
# the tests read the CLI's output at its default width for logs (180), as a plain run does
os.environ.pop("COLUMNS", None)

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "rr_aml.yaml"
EXAMPLE = ROOT / "examples" / "rr_aml_synthetic.csv"
SCENARIOS = ROOT / "configs" / "scenarios"


def config_dict() -> dict:
    """The bundled config as a dict (YAML anchors resolved, x- keys dropped).

    Without its ``provenance`` block: tests rename arms and drop values freely, and a provenance
    key naming a value the config no longer sets is a config error. :func:`with_provenance` puts
    back the entries whose values are still there.
    """
    doc = yaml.safe_load(CONFIG.read_text())
    return {k: v for k, v in doc.items() if not k.startswith("x-") and k != "provenance"}


def with_provenance(doc: dict) -> dict:
    """``doc`` with the bundled ``provenance`` entries of every value it still sets (a copy)."""
    doc = copy.deepcopy(doc)
    kept = {}
    for key, entry in yaml.safe_load(CONFIG.read_text())["provenance"].items():
        node = doc
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            kept[key] = entry
    doc["provenance"] = kept
    return doc


def in_shape_group(doc: dict, arm: str, group: str = "non_intensive") -> dict:
    """Put a new arm into a baseline-shape group of every survival endpoint (in place)."""
    for ep in ((doc.get("survival") or {}).get("endpoints") or {}).values():
        groups = ep["model"].get("shape_groups")
        if groups is not None and arm not in groups[group]:
            groups[group] = [*groups[group], arm]
    return doc


def without_shape_groups(doc: dict) -> dict:
    """One baseline shape for every arm (configs that rename or multiply the bundled arms)."""
    for ep in ((doc.get("survival") or {}).get("endpoints") or {}).values():
        ep["model"].pop("shape_groups", None)
    return doc


def small_sampler(doc: dict, draws: int = 1000, tune: int = 500) -> dict:
    """Cheap but honest sampler settings for tests."""
    doc = copy.deepcopy(doc)
    doc["sampler"] = {
        **doc.get("sampler", {}),
        "chains": 2,
        "draws": draws,
        "tune": tune,
        "limits": {"max_rhat": 1.02, "min_ess_bulk": 200, "min_ess_tail": 200, "max_divergences": 0},
        "retries": [{"tune": 1000, "target_accept": 0.95}],
        "fit_processes": 1,  # in-process: compiled models are reused across the tests' looks
    }
    return doc


SURVIVAL_RULE_KINDS = ("survival_efficacy", "survival_futility", "hazard_ratio")


def without_survival(doc: dict) -> dict:
    """The config without its survival section, benchmarks and survival rules (binary endpoints only)."""
    doc = copy.deepcopy(doc)
    doc.pop("survival", None)
    for arm in doc["arms"].values():
        arm.pop("survival_benchmarks", None)
    doc["rules"] = [r for r in doc["rules"] if r["kind"] not in SURVIVAL_RULE_KINDS]
    return doc


def write_config(tmp_path: Path, doc: dict, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def design_from(doc: dict):
    return parse_config(yaml.safe_dump(doc, sort_keys=False), "test.yaml")


BASE_ROW = {
    "subject_id": "S1",
    "site": "BJ01",
    "arm": "arm3",
    "enrolled_on": "2026-01-01",
    "randomized": "true",
    "idh1": "false",
    "flt3_itd": "false",
    "flt3_tkd": "false",
    "intensive_eligible": "true",
    "prior_venetoclax_3m": "false",
    "best_response": "",
    "response_on": "",
    "mrd_negative": "",
    "relapse_on": "",
    "death_on": "",
    "last_contact_on": "",
    "hsct_on": "",
    "new_drug_eligible": "false",
    "karyotype_risk": "intermediate",
}


def rows_frame(*rows: dict) -> pd.DataFrame:
    """A string frame of patients, each row BASE_ROW updated with the given fields."""
    recs = []
    for i, r in enumerate(rows):
        rec = {**BASE_ROW, "subject_id": f"S{i + 1}", **r}
        recs.append(rec)
    return pd.DataFrame(recs, columns=list(REQUIRED_COLUMNS) + list(OPTIONAL_COLUMNS))


def write_csv(tmp_path: Path, df: pd.DataFrame, name: str = "data.csv") -> Path:
    path = tmp_path / name
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n")
    path.write_text(buf.getvalue())
    return path


@pytest.fixture(scope="session")
def design():
    return parse_config(CONFIG.read_text(), "rr_aml.yaml")


@pytest.fixture(scope="module")
def fast_config(tmp_path_factory):
    """The bundled config with binary endpoints only and a small sampler (ledger and lock tests).

    Survival endpoints need MCMC; tests/test_interim.py checks the ledger and history of a look
    with survival endpoints.
    """
    doc = small_sampler(without_survival(config_dict()), draws=250, tune=200)
    for ep in doc["endpoints"].values():
        ep["model"] = {"kind": "independent"}
    return write_config(tmp_path_factory.mktemp("cfg"), with_provenance(doc))
