"""The patient table's column names and the value spellings the loader reads (a leaf module).

Defined once here so that the config schema (``data.columns``, ``data.values``) and the loader
(:mod:`adaptive.data`) check against the same names; this module imports nothing from the package.
"""

from __future__ import annotations

REQUIRED_COLUMNS = (
    "subject_id",
    "site",
    "arm",
    "enrolled_on",
    "randomized",
    "idh1",
    "flt3_itd",
    "flt3_tkd",
    "intensive_eligible",
    "prior_venetoclax_3m",
    "best_response",
    "response_on",
    "mrd_negative",
    "relapse_on",
    "death_on",
    "last_contact_on",
    "hsct_on",
)
OPTIONAL_COLUMNS = ("new_drug_eligible", "karyotype_risk")
#: optional date column: when the export has it, 30/60-day mortality runs from treatment start in
#: treated patients (blank: not treated as of the export); without it, from enrolment
TREATMENT_START_COLUMN = "treatment_start_on"
#: optional baseline characteristics, shown in the memo's baseline table (never used by a rule);
#: unlike the optional columns above, one the export lacks is absent from the validated table, so
#: the memo can leave its rows out rather than show them blank
BASELINE_COLUMNS = ("age", "sex", "ecog", "disease_status", "prior_hsct", "eln2022_risk")
#: age in years at enrolment: a number in this closed range (an adult R/R AML trial)
AGE_RANGE = (18, 110)
#: CDISC SEX codes read (any case): male, female, unknown (UNDIFFERENTIATED is not expected in AML)
SEX_CODES = ("M", "F", "U")
#: ECOG performance status at baseline: an integer grade
ECOG_GRADES = (0, 1, 2, 3, 4)
#: relapsed or primary refractory disease at enrolment
DISEASE_STATUSES = ("relapsed", "refractory")
#: ELN 2022 genetic risk categories
ELN2022_RISKS = ("favorable", "intermediate", "adverse")
#: every column the engine reads (``data.columns`` may map any of them)
ENGINE_COLUMNS = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, TREATMENT_START_COLUMN, *BASELINE_COLUMNS)
BOOL_COLUMNS = (
    "randomized",
    "idh1",
    "flt3_itd",
    "flt3_tkd",
    "intensive_eligible",
    "prior_venetoclax_3m",
    "mrd_negative",
    "new_drug_eligible",
)
#: every column read as a flag (``data.values`` may respell any): the engine's and the baseline's
FLAG_COLUMNS = (*BOOL_COLUMNS, "prior_hsct")
DATE_COLUMNS = ("enrolled_on", "response_on", "relapse_on", "death_on", "last_contact_on", "hsct_on")

#: the strings read as true / false when the config's ``data.values`` says nothing (any case):
#: CDISC ``Y``/``N`` and SAS ``1``/``0`` are unambiguous for a flag, so they are accepted by default
DEFAULT_TRUE_VALUES = ("true", "y", "yes", "1")
DEFAULT_FALSE_VALUES = ("false", "n", "no", "0")

#: CDISC ADaM (ADSL) variable names and the engine column each one usually holds: an export with
#: such a column and the engine column missing gets the ``data.columns`` line to add, not a guess
CDISC_NAMES = {
    "USUBJID": "subject_id",
    "SITEID": "site",
    "ARMCD": "arm",
    "TRT01A": "arm",
    "RANDFL": "randomized",
    "RANDDT": "enrolled_on",
    "DTHDT": "death_on",
    "LSTALVDT": "last_contact_on",
    "TRTSDT": "treatment_start_on",
}

#: ADAE variables read (CDISC names): subject, system organ class, preferred term, toxicity grade,
#: serious flag, treatment-emergent flag, start date; ``AESDTH`` (results in death), when present,
#: also marks a fatal event
ADAE_VARIABLES = ("USUBJID", "AEBODSYS", "AEDECOD", "ATOXGR", "AESER", "TRTEMFL", "ASTDT")
#: CTCAE grades; grade 5 is death
AE_GRADES = (1, 2, 3, 4, 5)
#: the columns of the validated adverse-event table (:attr:`adaptive.data.PatientTable.adverse_events`)
AE_COLUMNS = ("subject_id", "soc", "term", "grade", "serious", "teae", "start_on", "fatal")
#: a patient's adverse events in a ledger snapshot (:mod:`adaptive.datadiff`): a list of events, each
#: the values of :data:`AE_COLUMNS` after ``subject_id``
AE_KEY = "adverse_events"
