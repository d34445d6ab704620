"""The per-column schema editor: rows from a schema, a schema from the posted rows, errors to their column.

The editor shows one row per column (kind, role, bounds or domain, nullable,
hierarchy) and the table's constraints as YAML. What it does not show (integer,
bins, descriptions, special values, coding, null tokens) is kept from the
schema the steward edits. `schema_from_form` turns a posted form into the
schema document that `core.datasets.confirm_schema` checks, exactly as the YAML
form does; `errors_by_column` puts each message of a refusal in the row of the
column it names.

Suggestions (`Dataset.schema_suggestions`) were learned from raw rows: only
stewards get rows with them, and nothing suggested is applied unless its
accept box is ticked.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import yaml
from pydantic import ValidationError

from privacy.schema import PublicSchema
from privacy.schema.model import NUMERIC_KINDS

KINDS = ("categorical", "ordinal", "continuous", "datetime", "identifier", "text")
ROLES = ("", "quasi-identifier", "sensitive", "target")
ROLE_LABELS = {"": "none", "quasi-identifier": "quasi-identifier", "sensitive": "sensitive", "target": "target"}
# editor fields that a change of kind resets; the others are kept only where they still fit
_EDITED = ("kind", "values", "min", "max", "nullable", "hierarchy")
_NUMERIC_EXTRAS = ("integer", "bins", "top_code", "bottom_code", "round_to", "special_values")
_QUOTED = re.compile(r"'([^']+)'")
_LOC = re.compile(r"^columns\.([^.:]+)")
HIERARCHY_SYNTAX = "e.g. 'band 10', 'edges 0, 18, 65', 'month', 'year' or 'young: 18-25, 26-35; old: 66+'"


@dataclass
class EditorRow:
    """One column as the editor shows it: typed text, its errors, and (stewards only) suggestions."""

    index: int
    name: str
    slug: str
    kind: str = "categorical"
    role: str = ""
    min: str = ""
    max: str = ""
    values: str = ""
    nullable: bool = False
    hierarchy: str = ""
    learned: list[str] = field(default_factory=list)
    accepted: bool = False
    errors: list[str] = field(default_factory=list)
    suggested_role: str = ""
    suggested_reason: str = ""
    suggested_hierarchy: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def has_suggestion(self) -> bool:
        return bool(self.suggested_role or self.suggested_hierarchy)


@dataclass
class EditorState:
    """What the editor template needs: the rows, the constraints text and the errors not about one column."""

    rows: list[EditorRow]
    constraints: str = ""
    errors: list[str] = field(default_factory=list)
    constraint_errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def has_errors(self) -> bool:
        return bool(self.errors or self.constraint_errors or any(r.errors for r in self.rows))


# ----------------------------------------------------------------------------------
# text forms of values
# ----------------------------------------------------------------------------------


def slug(name: str, taken: set[str]) -> str:
    """A stable id fragment for a column name (`col-<slug>-error`), unique among `taken`."""
    base = re.sub(r"[^A-Za-z0-9_-]", "_", name) or "column"
    out, n = base, 2
    while out in taken:
        out, n = f"{base}-{n}", n + 1
    taken.add(out)
    return out


def _scalar_text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def values_text(values: list[Any] | None) -> str:
    """Category values as one text: comma-separated, or one per line when a value holds a comma."""
    if not values:
        return ""
    texts = [_scalar_text(v) for v in values]
    return "\n".join(texts) if any("," in t for t in texts) else ", ".join(texts)


def hierarchy_text(h: Mapping[str, Any] | None) -> str:
    """The compact form of a hierarchy: 'band 10', 'edges 0, 18, 65', 'month', 'a: x, y; b: z'."""
    if not h:
        return ""
    if h.get("band") is not None:
        return f"band {_scalar_text(h['band'])}"
    if h.get("edges") is not None:
        return "edges " + ", ".join(_scalar_text(e) for e in h["edges"])
    if h.get("granularity") is not None:
        return str(h["granularity"])
    if h.get("groups") is not None:
        return "; ".join(f"{g}: {', '.join(_scalar_text(m) for m in members)}" for g, members in h["groups"].items())
    return ""


def _number(text: str, what: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} must be a number such as 17 or 0.5, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {text!r}")
    return value


def _bound(text: str, kind: str, what: str) -> Any:
    text = text.strip()
    if not text:
        return None
    if kind == "datetime":
        return text  # the schema model reads dates such as 2001-12-31 and says what is wrong
    return _number(text, what)


def _split_values(text: str) -> list[str]:
    parts = text.splitlines() if "\n" in text.strip() else text.split(",")
    return [p.strip() for p in parts if p.strip()]


def _values(text: str, kind: str, previous: list[Any] | None) -> list[Any] | None:
    """Typed category values; a value spelled as before keeps its type (1 stays a number)."""
    tokens = _split_values(text)
    if not tokens:
        return None
    known = {_scalar_text(v): v for v in previous or []}
    out: list[Any] = []
    for t in tokens:
        if t in known:
            out.append(known[t])
        elif kind == "ordinal":
            try:
                out.append(_number(t, "an ordinal value"))
            except ValueError:
                out.append(t)
        else:
            out.append(t)
    return out


def parse_hierarchy(
    text: str, kind: str, previous: Mapping[str, Any] | None = None, with_values: bool = False
) -> dict[str, Any] | None:
    """A hierarchy from its compact text; ValueError says what to write instead.

    `with_values`: the column declares `values` (an ordinal with listed values is grouped, not banded)."""
    text = text.strip()
    if not text:
        return None
    if previous and text == hierarchy_text(previous):
        return dict(previous)
    head, _, rest = text.partition(" ")
    word = head.rstrip(":").lower()
    numeric = kind in NUMERIC_KINDS and not with_values
    if word in ("band", "edges") and ":" not in rest:
        if not numeric:
            raise ValueError(
                f"this column is {kind}{' with listed values' if with_values else ''}: band/edges apply to "
                "ordinal or continuous columns with bounds; use groups"
            )
        if word == "band":
            width = _number(rest.strip(), "the band width")
            if width <= 0:
                raise ValueError(f"the band width must be above 0, got {rest.strip()!r}")
            return {"band": width}
        edges = [_number(p, "each edge") for p in _split_values(rest.replace(" ", ",")) if p]
        if len(edges) < 1:
            raise ValueError("edges needs at least one cut point, e.g. 'edges 0, 18, 65'")
        return {"edges": edges}
    if word == "granularity":
        word = rest.strip().lower()
    if word in ("month", "year") and (not rest or head.rstrip(":").lower() == "granularity"):
        if kind != "datetime":
            raise ValueError(f"this column is {kind}: granularity (month, year) applies to datetime columns")
        return {"granularity": word}
    if word == "groups":
        text = rest
    groups: dict[str, list[Any]] = {}
    for part in re.split(r"[;\n]", text):
        if not part.strip():
            continue
        name, sep, members = part.partition(":")
        if not sep or not name.strip() or not _split_values(members):
            raise ValueError(f"cannot read the hierarchy {text!r}: write {HIERARCHY_SYNTAX}")
        groups[name.strip()] = _split_values(members)
    if not groups:
        raise ValueError(f"cannot read the hierarchy {text!r}: write {HIERARCHY_SYNTAX}")
    if numeric or kind == "datetime":
        raise ValueError(f"this column is {kind}: groups apply to categorical columns; use band or edges")
    return {"groups": groups}


# ----------------------------------------------------------------------------------
# schema -> rows
# ----------------------------------------------------------------------------------


def _role_of(name: str, doc: Mapping[str, Any]) -> str:
    if doc.get("target") == name:
        return "target"
    if name in (doc.get("quasi_identifiers") or []):
        return "quasi-identifier"
    if name in (doc.get("sensitive") or []):
        return "sensitive"
    return ""


def _suggest(rows: list[EditorRow], suggestions: Mapping[str, Any] | None) -> list[str]:
    """Put each suggestion in its row; the flags that name no column are returned."""
    if not suggestions:
        return []
    by_name = {r.name: r for r in rows}
    for role, key in (("quasi-identifier", "quasi_identifiers"), ("sensitive", "sensitive")):
        for item in suggestions.get(key) or []:
            row = by_name.get(str(item.get("column")))
            if row is not None and not row.suggested_role:
                row.suggested_role, row.suggested_reason = role, str(item.get("reason") or "")
    target = suggestions.get("target")
    if target and (row := by_name.get(str(target.get("column")))) is not None:
        row.suggested_role, row.suggested_reason = "target", str(target.get("reason") or "")
    for name, h in (suggestions.get("hierarchies") or {}).items():
        if (row := by_name.get(str(name))) is not None and isinstance(h, Mapping):
            row.suggested_hierarchy = hierarchy_text(h)
    loose = []
    for flag in suggestions.get("flags") or []:
        message = str(flag.get("message") or flag.get("issue") or "")
        if (row := by_name.get(str(flag.get("column")))) is not None:
            row.warnings.append(message)
        elif message:
            loose.append(message)
    return loose


def rows_from_schema(doc: Mapping[str, Any], suggestions: Mapping[str, Any] | None = None) -> EditorState:
    """The editor for a stored schema document (proposed or confirmed); suggestions for stewards only."""
    taken: set[str] = set()
    rows = []
    for i, (name, spec) in enumerate((doc.get("columns") or {}).items()):
        rows.append(
            EditorRow(
                index=i,
                name=name,
                slug=slug(name, taken),
                kind=str(spec.get("kind", "categorical")),
                role=_role_of(name, doc),
                min="" if spec.get("min") is None else _scalar_text(spec["min"]),
                max="" if spec.get("max") is None else _scalar_text(spec["max"]),
                values=values_text(spec.get("values")),
                nullable=bool(spec.get("nullable", False)),
                hierarchy=hierarchy_text(spec.get("hierarchy")),
                learned=list(spec.get("learned") or []),
            )
        )
    constraints = doc.get("constraints") or []
    text = yaml.safe_dump(constraints, sort_keys=False, allow_unicode=True) if constraints else ""
    return EditorState(rows=rows, constraints=text, warnings=_suggest(rows, suggestions))


# ----------------------------------------------------------------------------------
# form -> schema
# ----------------------------------------------------------------------------------


def rows_from_form(
    form: Mapping[str, str], doc: Mapping[str, Any], suggestions: Mapping[str, Any] | None = None
) -> EditorState:
    """The rows as the steward typed them (for the schema and for showing them again on an error)."""
    state = rows_from_schema(doc, suggestions)
    for row in state.rows:
        p = f"col-{row.index}-"
        row.kind = form.get(p + "kind", row.kind).strip()
        row.role = form.get(p + "role", row.role).strip()
        row.min = form.get(p + "min", row.min)
        row.max = form.get(p + "max", row.max)
        row.values = form.get(p + "values", row.values)
        row.nullable = bool(form.get(p + "nullable"))
        row.hierarchy = form.get(p + "hierarchy", row.hierarchy)
        row.accepted = bool(form.get(p + "accept")) and row.has_suggestion
        posted_name = form.get(p + "name")
        if posted_name is not None and posted_name != row.name:
            state.errors.append(
                f"the form's column {row.index + 1} is '{posted_name}' but the schema's is '{row.name}': "
                "the schema changed since the page was opened; reload it and make your change again"
            )
    state.constraints = form.get("constraints", state.constraints)
    return state


def _column_spec(row: EditorRow, base: Mapping[str, Any]) -> dict[str, Any]:
    """The column's document: the row's fields over what the editor does not show; ValueError for bad text."""
    kind = row.kind
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    old_kind = base.get("kind")
    spec: dict[str, Any] = {"kind": kind}
    for key, value in base.items():
        if key in _EDITED or key == "learned":
            continue
        fits = (
            kind == old_kind
            or key in ("description", "null_tokens")
            or (key in _NUMERIC_EXTRAS and kind in NUMERIC_KINDS and old_kind in NUMERIC_KINDS)
            or (key == "identifier" and kind == "identifier")
        )
        if fits:
            spec[key] = value
    if kind in ("categorical", "ordinal"):
        values = _values(row.values, kind, base.get("values"))
        if values is not None:
            spec["values"] = values
    if kind in ("ordinal", "continuous", "datetime"):
        for which in ("min", "max"):
            bound = _bound(getattr(row, which), kind, which)
            if bound is not None:
                previous = base.get(which)
                # an unchanged bound keeps its stored form (a date stays as stored)
                spec[which] = previous if previous is not None and _scalar_text(previous) == str(bound) else bound
    if row.nullable:
        spec["nullable"] = True
    if kind not in ("identifier", "text"):
        hierarchy = parse_hierarchy(row.hierarchy, kind, base.get("hierarchy"), "values" in spec)
        if hierarchy is not None:
            spec["hierarchy"] = hierarchy
    # a fact read from the data stays marked learned only while it is kept as it was
    learned = [f for f in base.get("learned") or [] if spec.get(f) == base.get(f)]
    if learned:
        spec["learned"] = learned
    return spec


def _ordered(previous: list[str], chosen: list[str]) -> list[str]:
    """The chosen names, those already listed first in their order (an unchanged list compares equal)."""
    return [n for n in previous if n in chosen] + [n for n in chosen if n not in previous]


def schema_from_form(
    form: Mapping[str, str], doc: Mapping[str, Any], suggestions: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any] | None, EditorState]:
    """The schema document the posted editor describes, or None with the errors in the state's rows.

    `doc` is the stored schema being edited (its columns, in their order, are the rows); suggestions
    are applied only to the rows whose accept box was ticked. The document is checked with the schema
    model here, so a mistake in one column is reported in that column's row; the table checks are
    `confirm_schema`'s.
    """
    state = rows_from_form(form, doc, suggestions)
    if state.errors:
        return None, state
    base_columns: Mapping[str, Any] = doc.get("columns") or {}
    columns: dict[str, Any] = {}
    roles: dict[str, list[str]] = {"quasi-identifier": [], "sensitive": [], "target": []}
    for row in state.rows:
        effective = replace(row, errors=[], warnings=[])
        if row.accepted:
            effective.role = row.suggested_role or row.role
            effective.hierarchy = row.suggested_hierarchy or row.hierarchy
        if effective.role not in ROLES:
            row.errors.append(f"role must be none, quasi-identifier, sensitive or target, got {effective.role!r}")
        elif effective.role:
            roles[effective.role].append(row.name)
        try:
            columns[row.name] = _column_spec(effective, base_columns.get(row.name) or {})
        except ValueError as exc:
            row.errors.append(str(exc))
    if len(roles["target"]) > 1:
        for row in state.rows:
            if row.name in roles["target"]:
                row.errors.append(
                    f"only one column can be the target; {', '.join(roles['target'])} are all marked target"
                )
    constraints: Any = []
    if state.constraints.strip():
        try:
            constraints = yaml.safe_load(state.constraints)
        except yaml.YAMLError as exc:
            state.constraint_errors.append(f"the constraints are not valid YAML: {exc}")
        if constraints is not None and not isinstance(constraints, list):
            state.constraint_errors.append("the constraints must be a YAML list, one rule per item ('- ...')")
    if state.has_errors:
        return None, state
    schema: dict[str, Any] = {k: v for k, v in doc.items() if k not in ("columns", "constraints")}
    schema["columns"] = columns
    schema["quasi_identifiers"] = _ordered(list(doc.get("quasi_identifiers") or []), roles["quasi-identifier"])
    schema["sensitive"] = _ordered(list(doc.get("sensitive") or []), roles["sensitive"])
    schema["target"] = roles["target"][0] if roles["target"] else None
    if constraints:
        schema["constraints"] = constraints
    try:
        PublicSchema.model_validate(schema)
    except ValidationError as exc:
        place_validation_errors(exc, state)
        return None, state
    return schema, state


# ----------------------------------------------------------------------------------
# errors -> rows
# ----------------------------------------------------------------------------------


def _column_named(text: str, names: set[str]) -> str | None:
    """The one column a message is about (by its `columns.<name>` place or a quoted name), else None."""
    m = _LOC.match(text)
    if m and m.group(1) in names:
        return m.group(1)
    named = [n for n in dict.fromkeys(_QUOTED.findall(text)) if n in names]
    return named[0] if len(named) == 1 else None


def _place(state: EditorState, column: str | None, message: str) -> None:
    if column is not None:
        next(r for r in state.rows if r.name == column).errors.append(message)
    else:
        state.errors.append(message)


def place_validation_errors(exc: ValidationError, state: EditorState) -> None:
    """Each error of the schema model in the row of its column (by its place, else by the name it quotes)."""
    names = {r.name for r in state.rows}
    for err in exc.errors():
        loc = [str(x) for x in err["loc"]]
        message = str(err["msg"]).removeprefix("Value error, ")
        if len(loc) >= 2 and loc[0] == "columns" and loc[1] in names:
            where = ".".join(loc[2:])
            _place(state, loc[1], f"{where}: {message}" if where and where != loc[1] else message)
        else:
            where = ".".join(loc)
            text = f"{where}: {message}" if where else message
            if (loc and loc[0] == "constraints") or message.startswith("constraints"):
                state.constraint_errors.append(text)
            else:
                _place(state, _column_named(message, names), text)


_PREFIXES = ("the table does not fit the schema: ", "invalid public schema: ")


def place_message(message: str, state: EditorState) -> None:
    """A refusal's message split into its parts, each in the row of the column it names.

    The table checks join their findings with '; ' (`column 'age' is declared ordinal but ...;
    column 'x' is in the table but not in the schema; declare it ...`): a part that names no column
    continues the one before it, and what is about no column goes to the top of the form.
    """
    names = {r.name for r in state.rows}
    prefix = next((p for p in _PREFIXES if message.startswith(p)), "")
    body = message[len(prefix) :]
    items: list[tuple[str | None, str]] = []
    for part in body.split("; "):
        column = _column_named(part, names)
        continues = not _QUOTED.search(part) and not part.startswith(("column ", "version "))
        if column is None and continues and items and items[-1][0] is not None:
            items[-1] = (items[-1][0], f"{items[-1][1]}; {part}")
        else:
            items.append((column, part))
    general = [text for column, text in items if column is None]
    for column, text in items:
        if column is not None:
            _place(state, column, text)
    if general:
        state.errors.append((prefix + "; ".join(general)) if prefix else "; ".join(general))
    elif prefix:
        state.errors.append(prefix.rstrip(": ") + ": see the columns marked below")
