"""The reference values a recommendation rests on, with the grade and source the config records.

A single-arm rule compares an arm's estimate with a reference value of the config: the arm's
``null_rate``, ``futility_rate``, ``target_rate`` or ``limit_rate`` of the endpoint, or its survival
benchmark (``survival_benchmarks.<endpoint>_median_days``). Each such value has a key,
:func:`~adaptive.config.rate_key` / :func:`~adaptive.config.benchmark_key`, under which the config's
``provenance`` block records its :class:`~decision_rules.vocabulary.Grade` and source.

Every arm recommendation lists the values its rules (``rules`` and ``also_fired``) were compared
against (``references``); a value graded other than ``V``, or with no recorded provenance, is
unverified, and the recommendation then says so (``rests_on_unverified``, ``reference_note``). The
memo and the terminal print that note beside every action other than ``continue``. Comparisons of
two arms (``superiority``, ``hazard_ratio``) compare the arms with each other: no reference value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from adaptive.config import RATE_FIELDS, Design, benchmark_key, rate_key, reference_values
from adaptive.endpoints import BINARY_ENDPOINTS, SURVIVAL_ENDPOINTS
from decision_rules import RuleResult
from decision_rules.vocabulary import Action, Grade

__all__ = [
    "grade_tag",
    "result_references",
    "recommendation_references",
    "reference_note",
    "is_decisive",
    "provenance_summary",
]

#: how each reference is named in a short label ("arm2 CRc null 0.22")
_WORDS = {
    "null_rate": "null",
    "futility_rate": "futility rate",
    "target_rate": "target",
    "limit_rate": "limit",
    "benchmark": "benchmark median",
}
#: actions whose recommendation prints the reference note (memo, terminal)
_QUIET = (Action.CONTINUE, Action.ADD_ARM, Action.ADJUST_RANDOMIZATION)


def grade_tag(grade: str | None) -> str:
    """``[V]``, ``[M]``, ``[D]``, ``[none]``; ``[?]`` for a value with no recorded provenance."""
    return f"[{grade}]" if grade else "[?]"


def is_decisive(rec: Mapping) -> bool:
    """Whether a recommendation asks the DSMB to act (graduate, drop, close, suspend, flag)."""
    return rec.get("action") not in _QUIET


def _label(arm: str, endpoint: str, name: str, value: float) -> str:
    spec = BINARY_ENDPOINTS.get(endpoint) or SURVIVAL_ENDPOINTS.get(endpoint)
    ep = spec.label if spec is not None else endpoint
    word = _WORDS.get(name, f"reference {name}")
    shown = f"{value:g} days" if name == "benchmark" else f"{value:g}"
    return f"{arm} {ep} {word} {shown}"


def _compared(design: Design, r: RuleResult) -> list[tuple[str, float]]:
    """``(reference name, value)`` pairs a single-arm rule result compared the arm's estimate with."""
    extra = r.extra
    if "success_reference" in extra:  # a predictive rule: its success rule's reference
        rule = next((x for x in design.rules if x.id == r.rule), None)
        name = str(getattr(rule, "success_reference_name", "reference"))
        return [(name, float(extra["success_reference"]))]
    if "tiers" in extra:  # a harm rule: every tier's limit
        return [(str(t["reference_name"]), float(t["reference"])) for t in extra["tiers"]]
    if "reference" in extra and extra["reference"] is not None:
        return [(str(extra.get("reference_name", "reference")), float(extra["reference"]))]
    return []


def result_references(design: Design, r: RuleResult) -> list[dict]:
    """The config reference values one rule result was compared against, with their provenance.

    Each: ``key`` (``None`` for a number written into the rule itself), ``value``, ``grade`` and
    ``source`` (``None`` when the config records none), ``label`` and the ``rules`` that read it.
    """
    if len(r.arms) != 1:
        return []
    arm = r.arms[0]
    out = []
    for name, value in _compared(design, r):
        if name in RATE_FIELDS:
            key: str | None = rate_key(arm, r.endpoint, name)
        elif name == "benchmark":
            key = benchmark_key(arm, r.endpoint)
        else:
            key = None
        prov = design.provenance.get(key) if key else None
        out.append(
            {
                "key": key,
                "value": value,
                "grade": Grade(prov.grade) if prov else None,
                "source": prov.source if prov else None,
                "label": _label(arm, r.endpoint, name, value) if key else f"'{r.rule}' reference {value:g}",
                "rules": [r.rule],
            }
        )
    return out


def recommendation_references(design: Design, results: Sequence[RuleResult]) -> list[dict]:
    """The reference values of several rule results, one entry per value (its ``rules`` merged)."""
    merged: dict[str, dict] = {}
    for r in results:
        for ref in result_references(design, r):
            ident = ref["key"] or ref["label"]
            if ident in merged:
                if r.rule not in merged[ident]["rules"]:
                    merged[ident]["rules"].append(r.rule)
            else:
                merged[ident] = ref
    return list(merged.values())


#: what a value of each grade other than ``V`` is, in the note (singular, plural)
_NOTE_WORDS = {
    Grade.UNVERIFIED: ("an unverified published figure", "unverified published figures"),
    Grade.DESIGN: ("a design choice", "design choices"),
    Grade.NONE: ("a value with no published benchmark", "values with no published benchmark"),
    None: ("a value with no recorded provenance", "values with no recorded provenance"),
}


def reference_note(references: Sequence[Mapping]) -> str:
    """The sentence of a recommendation compared against any value not graded ``V`` (else ``""``).

    Grouped by grade, in the vocabulary's order: "Rests on an unverified published figure ([M]
    arm2 CRc null 0.22) and a design choice ([D] ...)." A design choice is not an unverified
    number (there is nothing to verify), so the two are said apart.
    """
    weak = [r for r in references if r.get("grade") != Grade.VERIFIED]
    if not weak:
        return ""
    order = [g for g in (*Grade, None) if g != Grade.VERIFIED]
    parts = []
    for g in order:
        these = [r for r in weak if (Grade(r["grade"]) if r.get("grade") else None) == g]
        if these:
            one, many = _NOTE_WORDS[g]
            labels = "; ".join(f"{grade_tag(r.get('grade'))} {r['label']}" for r in these)
            parts.append(f"{one if len(these) == 1 else many} ({labels})")
    return "Rests on " + (parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]) + "."


def provenance_summary(design: Design) -> str:
    """One line for ``adaptive validate``: the config's reference values by grade."""
    keys = list(reference_values(design.raw))
    counts = {g: 0 for g in Grade}
    for k in keys:
        if k in design.provenance:
            counts[Grade(design.provenance[k].grade)] += 1
    missing = len(keys) - sum(counts.values())
    graded = ", ".join(f"{grade_tag(g)} {n}" for g, n in counts.items())
    return (
        f"reference values: {len(keys)}; provenance {graded}, {grade_tag(None)} {missing} "
        f"(not [V]: {len(keys) - counts[Grade.VERIFIED]}, said beside each decision resting on one)"
    )
