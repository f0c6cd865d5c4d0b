"""Scenario files: the assumed truth behind synthetic data and simulated trials.

A scenario gives, per arm, the true response-category probabilities and event rates, and for the
trial the accrual, the sites and the prevalence of the routing characteristics. It is parsed by
pydantic (unknown keys are errors, with a "did you mean"). See ``configs/scenarios/*.yaml``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from adaptive.config import Design, _probability
from adaptive.exceptions import Problem, ScenarioError
from adaptive.schema_errors import did_you_mean, pydantic_problems
from adaptive.yamlfile import decode_text, load_yaml, with_line

Probability = Annotated[float, AfterValidator(_probability)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ArmTruth(_Strict):
    """True outcome model of one arm.

    ``cr``, ``cri``, ``pr``, ``ne`` are probabilities of the best-response categories (NR is the
    rest). Deaths follow a piecewise-constant hazard matching ``mortality_30d`` and
    ``mortality_60d``, then an exponential tail that gives overall median ``median_os_days``.
    Relapse among CR/CRi is exponential with median ``median_relapse_days`` from response.
    ``response_days`` (``[lo, hi]``, optional) is the arm's own range of the response assessment
    day (uniform over whole days, as the scenario-level ``response_days``, which it overrides):
    non-intensive regimens often respond only after several cycles.
    """

    cr: Fraction
    cri: Fraction
    pr: Fraction = 0.0
    ne: Fraction = 0.03
    mrd_negative_given_crc: Fraction = 0.5
    mortality_30d: Probability
    mortality_60d: Probability
    median_os_days: Annotated[float, Field(gt=60)]
    median_relapse_days: Annotated[float, Field(gt=0)] = 240.0
    hsct_given_crc: Fraction = 0.3
    #: drift: change of the log-odds of CR and of CRi per year since the trial start (used by
    #: `adaptive simulate`; e.g. a population that gets fitter over time)
    crc_trend_per_year: float = 0.0
    #: the arm's own response-day range (overrides the scenario's ``response_days``)
    response_days: tuple[int, int] | None = None

    @model_validator(mode="after")
    def _consistent(self):
        if self.response_days is not None:
            lo, hi = self.response_days
            if lo < 1:
                raise ValueError(f"response_days starts on day {lo}; the first possible day is 1")
            if hi < lo:
                raise ValueError(f"response_days [{lo}, {hi}] ends before it starts")
        if self.cr + self.cri + self.pr + self.ne > 1.0 + 1e-12:
            raise ValueError(f"cr + cri + pr + ne = {self.cr + self.cri + self.pr + self.ne:g} exceeds 1")
        if self.mortality_60d < self.mortality_30d:
            raise ValueError("mortality_60d must be at least mortality_30d")
        if self.mortality_60d >= 0.5:
            raise ValueError("mortality_60d must be below 0.5 (median OS beyond day 60)")
        return self

    @property
    def crc(self) -> float:
        return self.cr + self.cri


class Prevalence(_Strict):
    """Prevalence of the routing characteristics among enrolled patients (independent draws)."""

    new_drug_eligible: Fraction = 0.05
    idh1: Fraction = 0.10
    flt3: Fraction = 0.25
    flt3_tkd_given_flt3: Fraction = 0.25
    prior_venetoclax_3m: Fraction = 0.15
    intensive_eligible: Fraction = 0.60
    karyotype_risk: dict[str, Fraction] = Field(
        default_factory=lambda: {"favorable": 0.1, "intermediate": 0.5, "adverse": 0.4}
    )


class Scenario(_Strict):
    """A whole scenario file."""

    schema_version: int = 1
    name: str
    description: str = ""
    start_date: date = date(2025, 1, 6)
    accrual_per_month: Annotated[float, Field(gt=0)] = 12.0
    sites: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=lambda: {"site01": 1.0})
    prevalence: Prevalence = Prevalence()
    response_days: tuple[int, int] = (21, 56)
    mrd_missing: Fraction = 0.05
    response_date_missing_for_nr: Fraction = 0.1
    dropout_per_year: Fraction = 0.05
    routing_deviation: Fraction = 0.0
    export_lag_days: Annotated[int, Field(ge=0)] = 14
    arms: dict[str, ArmTruth]

    def response_days_of(self, arm: str) -> tuple[int, int]:
        """The response-day range of ``arm``: its own ``response_days``, else the scenario's."""
        own = self.arms[arm].response_days if arm in self.arms else None
        return tuple(own) if own is not None else tuple(self.response_days)


def parse_scenario(text: str, source: str = "<scenario>", design: Design | None = None) -> Scenario:
    """Parse a scenario; with a design, also check that it covers every open arm."""
    doc, lines, yaml_problems = load_yaml(text, source)
    if yaml_problems:
        raise ScenarioError(yaml_problems)
    try:
        sc = Scenario.model_validate(doc)
    except ValidationError as err:
        problems = pydantic_problems(err, source, Scenario)
        raise ScenarioError(
            [Problem(with_line(p.where, source, lines), p.message) for p in problems]
        ) from None
    if design is not None:
        problems = []
        for a in sc.arms:
            if a not in design.arm_ids:
                problems.append(
                    Problem(
                        f"{source}: arms.{a}",
                        f"arm {a!r} is not in the config.{did_you_mean(a, design.arm_ids)}",
                    )
                )
        for a in design.arms:
            if a.status != "queued" and a.id not in sc.arms:
                problems.append(Problem(f"{source}: arms", f"no truth given for open arm {a.id!r}."))
        if problems:
            raise ScenarioError(problems)
    return sc


def load_scenario(path: str | Path, design: Design | None = None) -> Scenario:
    """Read and validate a scenario file."""
    path = Path(path)
    try:
        if path.exists() and not path.is_file():
            raise ScenarioError([Problem(str(path), "cannot read: it is not a regular file.")])
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError([Problem(str(path), f"cannot read: {exc.strerror}")]) from None
    text, problems = decode_text(raw, path.name)
    if problems:
        raise ScenarioError(problems)
    return parse_scenario(text, path.name, design)
