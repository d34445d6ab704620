"""Suggested roles for a proposed schema (`suggest_roles`), each for the steward to accept or not.

The proposal (`propose_schema`) says what each column is; the suggestions say
what it is for: quasi-identifiers (names and kinds that usually are: a date of
birth, an age, sex, race or ethnicity, a ZIP or postal code, a geography code,
the date of an event), sensitive columns (health, money, criminal justice,
outcomes), a target (a column of few values named like an outcome), a
hierarchy for every suggested quasi-identifier, and flags on columns the
steward should look at (empty, free text, identifiers).

The suggestions are read from the column names, the schema and the raw rows
(which columns are empty, the categories of an open domain): like the
proposal, they are the steward's to see, never an analyst's. The format is a
plain JSON-able dict, stored with the dataset and shown by the schema editor::

    {"quasi_identifiers": [{"column": "age", "reason": "name looks like an age"}],
     "sensitive": [{"column": ..., "reason": ...}],
     "target": {"column": "income", "reason": ...} | None,
     "hierarchies": {"age": {"band": 10.0}},
     "flags": [{"column": "notes", "issue": "free_text", "message": ...}]}

`apply_suggestions` writes accepted suggestions into a schema.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, Literal

import pandas as pd

from privacy.schema._regions import COUNTRY_REGIONS, US_STATE_REGIONS, region_of
from privacy.schema.model import NUMERIC_KINDS, ColumnSpec, Hierarchy, PublicSchema

__all__ = ["apply_suggestions", "suggest_roles"]

#: most distinct values of an open-domain column that a grouping hierarchy lists
MAX_GROUPED_VALUES = 10_000
#: most intervals a suggested band makes between the bounds (the generaliser refuses more)
MAX_BANDS = 10_000
#: most distinct values a suggested target holds
MAX_TARGET_VALUES = 10


# ----------------------------------------------------------------------------------
# column names
# ----------------------------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _tokens(name: str) -> list[str]:
    """Lower-case words of a column name: `DateOfBirth`, `date_of_birth` and `date-of-birth` alike."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", str(name))
    return [t for t in re.split(r"[^a-z0-9]+", spaced.lower()) if t]


class _Name:
    def __init__(self, name: str) -> None:
        self.tokens = _tokens(name)
        self.joined = "".join(self.tokens)
        self.words = set(self.tokens)

    def has(self, *words: str) -> bool:
        return bool(self.words.intersection(words))


def _is_birth(n: _Name) -> bool:
    return n.joined in {"dob", "yob", "bdate", "birthdate", "birthday", "dateofbirth", "yearofbirth"} or n.has(
        "dob", "birth", "birthdate", "birthday", "born", "yob", "birthyear"
    )


def _is_age(n: _Name) -> bool:
    suffixes = {"", "s", "group", "grp", "band", "cat", "range", "yrs", "years", "yr", "at", "bucket"}
    return any(t.startswith("age") and t[3:] in suffixes for t in n.tokens)


def _is_zip(n: _Name) -> bool:
    return n.has("zip", "zipcode", "zip3", "zip5", "postcode", "postal", "postalcode", "plz", "postcodes") or any(
        w in n.joined for w in ("zipcode", "postcode", "postalcode")
    )


_GEO_WORDS = _words(
    "county state region fips geo geoid geography country city town district tract puma "
    "municipality province ward borough neighborhood neighbourhood lsoa msoa cbsa msa territory "
    "residence nationality birthplace"
)
_FIPS_WORDS = ("fips", "geoid", "county")
_COUNTRY_WORDS = ("country", "nationality", "birthplace", "citizenship")
#: words of a date ("date", "dt") and then of an event
_EVENT_WORDS = _words(
    "date dt admission admit admitted discharge discharged visit event death dod encounter "
    "arrival appointment surgery onset timestamp"
)

#: (reason, test) in order: the first that matches names the column's reason
_QI_RULES: list[tuple[str, Callable[[_Name], bool]]] = [
    ("name looks like a date of birth", _is_birth),
    ("name looks like an age", _is_age),
    ("name looks like sex or gender", lambda n: n.has("sex", "gender")),
    (
        "name looks like race or ethnicity",
        lambda n: n.has("race", "ethnicity", "ethnic", "ethnicgroup", "raceethnicity", "raceeth"),
    ),
    ("name looks like a ZIP or postal code", _is_zip),
    ("name looks like a geography (area or code)", lambda n: n.has(*_GEO_WORDS)),
]

_SENSITIVE_RULES: list[tuple[str, tuple[str, ...]]] = [
    (
        "name looks like health information",
        _words(
            "diagnosis diag dx icd icd9 icd10 condition disease disorder illness comorbidity "
            "medication meds drug drugs prescription rx procedure cpt treatment therapy hiv cancer "
            "pregnancy pregnant psychiatric mental disability symptom symptoms"
        ),
    ),
    (
        "name looks like a financial amount",
        _words(
            "income salary wage wages earnings balance amount cost costs payment payments debt loan "
            "credit capital revenue spend spending savings"
        ),
    ),
    (
        "name looks like a charge: an amount billed or a criminal charge",
        _words("charge charges"),
    ),
    (
        "name looks like criminal-justice information",
        _words("offense offence crime criminal arrest conviction convicted priors recid sentence"),
    ),
    (
        "name looks like an outcome",
        _words("outcome result results mortality died readmitted readmission survived recidivism"),
    ),
    (
        "name looks like a special category (religion, politics, sexuality)",
        _words("religion political orientation"),
    ),
]

_TARGET_EXACT = {"target", "label", "class", "y", "outcome", "response", "result"}
_TARGET_WORDS = _words(
    "income label target outcome class readmitted readmission recid recidivism churn churned "
    "default fraud survived died death mortality approved response result"
)

_DIRECT_ID = set(
    _words(
        "accountnumber address cardnumber email emailaddress familyname firstname fullname givenname "
        "iban ipaddress lastname middlename mobile mrn name nhsnumber passport passportnumber "
        "patientname phone phonenumber ssn street streetaddress surname telephone"
    )
)


def _is_date_name(n: _Name) -> bool:
    return n.has("date", "dt", "dttm", "datetime", "timestamp") or n.joined.endswith("date")


#: first words of a person's name column (`first_name`, `patient name`)
_NAME_OF = {"first", "last", "full", "given", "family", "middle", "patient", "client", "customer", "person", "maiden"}


def _qi_reason(name: str, spec: ColumnSpec) -> str | None:
    n = _Name(name)
    for reason, test in _QI_RULES:
        if test(n):
            return reason
    if _is_date_name(n) and n.has(*_EVENT_WORDS[2:]):
        return "name looks like the date of an event"
    if spec.kind == "datetime" or _is_date_name(n):
        return "a date: dates of events link records to other sources"
    return None


def _sensitive_reason(name: str) -> str | None:
    n = _Name(name)
    for reason, words in _SENSITIVE_RULES:
        if n.has(*words):
            return reason
    return None


# ----------------------------------------------------------------------------------
# hierarchies
# ----------------------------------------------------------------------------------


def _nice(x: float) -> float:
    """The smallest of 1, 2, 5 x 10^k at or above x."""
    k = math.floor(math.log10(x))
    for m in (1, 2, 5, 10):
        if m * 10**k >= x - 1e-12:
            return float(m * 10**k)
    return float(10 ** (k + 1))


def _band(name: str, spec: ColumnSpec, lo: float, hi: float) -> float:
    n = _Name(name)
    span = max(hi - lo, 1e-9)
    if _is_age(n) or _is_birth(n):
        band = 5.0 if span <= 60 else 10.0
    elif _is_zip(n) and hi >= 1000:
        band = 100.0  # 5-digit ZIPs as numbers: bands of 100 are the 3-digit prefixes
    elif n.has(*_FIPS_WORDS) and hi >= 1000:
        band = 1000.0  # county FIPS codes as numbers (state x 1000 + county): bands of 1000 are the states
    else:
        band = _nice(span / 10)
    if spec.is_integer:
        band = max(band, 1.0)
    while span / band > MAX_BANDS:
        band = _nice(band * 2)
    return band


def _zip_prefix(v: str, width: int | None) -> str | None:
    if width is not None and v.isdigit():
        v = v.zfill(width)
    m = re.fullmatch(r"(\d{3})\d{2}(?:-\d{4})?", v)
    if m:
        return m.group(1) + "**"
    if v.isdigit() and len(v) == 4:
        return v[:2] + "**"
    m = re.fullmatch(r"([A-Za-z0-9]{2,4})\s+[A-Za-z0-9]{3}", v)
    if m:
        return m.group(1).upper() + " *"  # the outward code of a UK-style postcode
    m = re.fullmatch(r"([A-Za-z]{1,2}\d[A-Za-z0-9]?)\d[A-Za-z]{2}", v)
    return m.group(1).upper() + " *" if m else None


def _fips_prefix(v: str, width: int | None) -> str | None:
    if width is not None and v.isdigit():
        v = v.zfill(width)
    return v[:2] + "***" if re.fullmatch(r"\d{5}", v) else None


def _declared_or_seen(spec: ColumnSpec, s: pd.Series | None) -> list[Any] | None:
    if spec.values is not None:
        return list(spec.values)
    if s is None:
        return None
    seen = pd.unique(s.dropna())
    if len(seen) > MAX_GROUPED_VALUES:
        return None
    return sorted((v.item() if hasattr(v, "item") else v for v in seen), key=str)


def _grouped(values: list[Any], key: Callable[[Any], str | None]) -> tuple[dict[str, list[Any]], list[Any]] | None:
    """Values grouped by `key`, and those it places in no group; None when fewer than half are grouped or the
    groups do not generalise (a group per value is the value itself, one group of every value is `*`)."""
    groups: dict[str, list[Any]] = {}
    ungrouped: list[Any] = []
    names = {str(v) for v in values}
    for v in values:
        group = key(v)
        if group is None or group in names:  # a group may not be named like a value left ungrouped
            ungrouped.append(v)
        else:
            groups.setdefault(group, []).append(v)
    if 2 * (len(values) - len(ungrouped)) < len(values) or all(len(m) == 1 for m in groups.values()):
        return None
    if len(groups) == 1 and not ungrouped:
        return None
    return groups, ungrouped


def _hierarchy(name: str, spec: ColumnSpec, s: pd.Series | None) -> tuple[Hierarchy | None, str, list[Any]]:
    """A hierarchy for a suggested quasi-identifier, words for it and the values it leaves in no group;
    or None and why not."""
    n = _Name(name)
    if spec.kind == "datetime":
        level: Literal["month", "year"] = "year" if _is_birth(n) else "month"
        return Hierarchy(granularity=level), f"by {level}", []
    if spec.kind in NUMERIC_KINDS and spec.values is None:
        if spec.has_bounds:
            lo, hi = spec.numeric_bounds()
        else:
            num = pd.to_numeric(s, errors="coerce").dropna() if s is not None else pd.Series(dtype=float)
            if num.empty:
                return None, "it has no bounds to band: declare min and max, then a band", []
            lo, hi = float(num.min()), float(num.max())
        band = _band(name, spec, lo, hi)
        return Hierarchy(band=band), f"bands of {band:g}", []
    values = _declared_or_seen(spec, s)
    if values is None:
        return None, "its categories are not declared: declare `values`, then groups", []
    width = 5 if all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 100_000 for v in values) else None
    found = None
    regions = US_STATE_REGIONS if n.has("state") else COUNTRY_REGIONS if n.has(*_COUNTRY_WORDS) else None
    if _is_zip(n):
        found = _grouped(values, lambda v: _zip_prefix(str(v).strip(), width))
        how = "by the code's prefix"
    elif n.has(*_FIPS_WORDS):
        found = _grouped(values, lambda v: _fips_prefix(str(v).strip(), width))
        how = "by state (the FIPS code's first two digits)"
    elif regions is not None:
        found = _grouped(values, lambda v: region_of(v, regions))
        how = "by US Census region" if regions is US_STATE_REGIONS else "by world region"
    if found is None:
        example = "regions" if n.has(*_GEO_WORDS) else "broader categories"
        return (
            None,
            f"no honest grouping of its values is known; declare groups (for example {example}) or let "
            "suppression replace rare values",
            [],
        )
    groups, ungrouped = found
    return Hierarchy(groups=groups), f"{len(groups)} groups {how}", ungrouped


def describe_hierarchy(h: dict[str, Any]) -> str:
    """Short words for a suggested hierarchy (as in the suggestions): "band 10", "granularity year", "12 groups"."""
    if "band" in h:
        return f"band {h['band']:g}"
    if "edges" in h:
        return "edges " + ", ".join(f"{e:g}" for e in h["edges"])
    if "granularity" in h:
        return f"granularity {h['granularity']}"
    groups = h.get("groups") or {}
    names = list(groups)
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    return f"{len(names)} groups ({shown})"


# ----------------------------------------------------------------------------------
# target and flags
# ----------------------------------------------------------------------------------


def _few_values(spec: ColumnSpec, s: pd.Series | None) -> int | None:
    """How many values the column takes, when they are few enough for a target (else None)."""
    if spec.values is not None:
        k = len(spec.values)
    elif spec.kind == "categorical" and s is not None:
        k = int(s.dropna().nunique())
    else:
        return None
    return k if 2 <= k <= MAX_TARGET_VALUES else None


def _target(schema: PublicSchema, table: pd.DataFrame) -> dict[str, str] | None:
    best: tuple[float, int, str, str] | None = None
    for pos, (name, spec) in enumerate(schema.columns.items()):
        if spec.is_dropped:
            continue
        k = _few_values(spec, table[name] if name in table.columns else None)
        if k is None:
            continue
        n = _Name(name)
        score = 3.0 if n.joined in _TARGET_EXACT else 2.0 if n.has(*_TARGET_WORDS) else 0.0
        if score == 0:
            continue
        score += 0.5 if k == 2 else 0.0
        what = "a two-valued column" if k == 2 else "a column of few values"
        candidate = (score, pos, name, f"{what} whose name looks like an outcome to predict")
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    return None if best is None else {"column": best[2], "reason": best[3]}


def _flags(name: str, spec: ColumnSpec, s: pd.Series | None) -> list[dict[str, str]]:
    n = _Name(name)
    flags: list[dict[str, str]] = []
    role = next((reason for reason, test in _QI_RULES if test(n)), None) or _sensitive_reason(name)
    keep = f"; its {role}: to keep it, declare its kind and its role" if role else ""
    if s is not None and len(s) and bool(s.isna().all()):
        flags.append(
            {
                "column": name,
                "issue": "empty",
                "message": "every value is missing in the uploaded file: nothing to release, so the proposal "
                "drops it (kind: text); declare its kind if later data fill it",
            }
        )
    elif spec.kind == "text":
        flags.append(
            {
                "column": name,
                "issue": "free_text",
                "message": "values look like free text (long, with many distinct values): dropped from releases" + keep,
            }
        )
    elif spec.kind == "identifier":
        flags.append(
            {
                "column": name,
                "issue": "identifier",
                "message": "values look like an identifier (unique, or an id-like name): "
                + ("replaced by fake ids" if spec.identifier == "fake" else "dropped from releases")
                + keep,
            }
        )
    elif n.joined in _DIRECT_ID or (len(n.tokens) == 2 and n.tokens[1] == "name" and n.tokens[0] in _NAME_OF):
        flags.append(
            {
                "column": name,
                "issue": "identifier",
                "message": "name looks like a direct identifier (a name, address, phone, e-mail or record number): "
                "declare kind: identifier to drop it",
            }
        )
    if (_is_zip(n) or n.has(*_FIPS_WORDS)) and spec.kind in NUMERIC_KINDS:
        flags.append(
            {
                "column": name,
                "issue": "code_as_number",
                "message": "name looks like a ZIP, postal or FIPS code, but its values were read as numbers, which "
                "drops leading zeros (02139 reads as 2139): declare it categorical with the codes written as text",
            }
        )
    kept = not spec.is_dropped and spec.kind != "datetime" and spec.kind not in NUMERIC_KINDS
    if kept and (_is_date_name(n) or _is_birth(n)):
        flags.append(
            {
                "column": name,
                "issue": "not_datetime",
                "message": "name looks like a date, but its values were not read as dates: write them as "
                "YYYY-MM-DD (or declare kind: datetime) so that they can be generalised by month or year",
            }
        )
    return flags


# ----------------------------------------------------------------------------------
# suggestions
# ----------------------------------------------------------------------------------


def suggest_roles(table: pd.DataFrame, schema: PublicSchema) -> dict[str, Any]:
    """Suggested quasi-identifiers, sensitive columns, target, hierarchies and flags for `schema` over `table`.

    Read from the column names, the schema and the raw rows: the steward's to see and accept, never an
    analyst's. Every suggested quasi-identifier has a hierarchy in `hierarchies`, or a `no_hierarchy` flag
    saying why none is suggested (a categorical whose values cannot be grouped honestly). Columns the
    schema drops (identifier, text) are never suggested for a role; they may be flagged.
    """
    qis: list[dict[str, str]] = []
    sensitive: list[dict[str, str]] = []
    hierarchies: dict[str, dict[str, Any]] = {}
    flags: list[dict[str, str]] = []
    for name, spec in schema.columns.items():
        s = table[name] if name in table.columns else None
        flags += _flags(name, spec, s)
        if spec.is_dropped:
            continue
        reason = _qi_reason(name, spec)
        if reason is not None:
            qis.append({"column": name, "reason": reason})
            h, how, ungrouped = _hierarchy(name, spec, s)
            if h is not None:
                hierarchies[name] = h.model_dump(mode="json", exclude_none=True)
                if ungrouped:
                    shown = ", ".join(repr(v) for v in ungrouped[:5]) + (", ..." if len(ungrouped) > 5 else "")
                    flags.append(
                        {
                            "column": name,
                            "issue": "partial_hierarchy",
                            "message": f"the suggested groups ({how}) leave {len(ungrouped)} value(s) in no group "
                            f"({shown}): they stay as they are at the first level; add them to a group",
                        }
                    )
            else:
                flags.append({"column": name, "issue": "no_hierarchy", "message": f"no hierarchy suggested, as {how}"})
            continue
        why = _sensitive_reason(name)
        if why is not None:
            sensitive.append({"column": name, "reason": why})
    return {
        "quasi_identifiers": qis,
        "sensitive": sensitive,
        "target": _target(schema, table),
        "hierarchies": hierarchies,
        "flags": flags,
    }


def apply_suggestions(
    schema: PublicSchema,
    suggestions: dict[str, Any],
    *,
    quasi_identifiers: list[str] | None = None,
    sensitive: list[str] | None = None,
    target: str | None = None,
) -> PublicSchema:
    """`schema` with the suggested roles and hierarchies written in; given roles replace the suggested ones.

    A hierarchy derived from values read from the data (bands from the column's learned bounds, groups of its
    learned categories or of the rows of an open domain) is marked `learned` like them; a month or year
    granularity, chosen from the column's name, is not.
    """
    qis = quasi_identifiers if quasi_identifiers else [q["column"] for q in suggestions["quasi_identifiers"]]
    sens = sensitive if sensitive else [q["column"] for q in suggestions["sensitive"]]
    tgt = target if target else (suggestions["target"] or {}).get("column")
    cols = dict(schema.columns)
    for name in qis:
        h = suggestions["hierarchies"].get(name)
        spec = cols.get(name)
        if h is None or spec is None or spec.hierarchy is not None:
            continue
        # a granularity follows from the name alone; bands follow from the bounds, groups list the values
        from_data = "granularity" not in h and (
            bool({"values", "min", "max"} & set(spec.learned)) or ("groups" in h and spec.values is None)
        )
        learned = [*spec.learned, "hierarchy"] if from_data else list(spec.learned)
        cols[name] = spec.model_copy(update={"hierarchy": Hierarchy.model_validate(h), "learned": learned})
    data = schema.model_copy(update={"columns": cols}).to_dict()
    data["quasi_identifiers"] = list(qis)
    data["sensitive"] = list(sens)
    if tgt:
        data["target"] = tgt
    return PublicSchema.from_dict(data)
