"""Offline commands: the data owner's tools, on local files, with no service.

    synthgate schema propose FILE [-o schema.yaml] [--qi COL ...] [--sensitive COL ...] [--target COL]
                             [--accept-suggestions] [--json]
    synthgate synth FILE --schema S --method M --epsilon E [--delta D] [--rows N] [--seed K]
                    [--option key=value ...] -o OUT.csv [--json]
    synthgate methods [--json]

Heavy libraries are imported inside the commands, and only the module of the
chosen method is loaded.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from webapp.cli._common import fail, handle_errors, keep_freed_memory, quick_exit_when_done

DEFAULT_ROWS = 1000

PROPOSAL_HEADER = """\
# Proposed public schema for {name} (synthgate schema propose).
# NOT PUBLIC YET. Every value under a column with a `learned` list was read from the data:
# replace it with a value from public documentation (or widen it), then delete the `learned`
# line. Bounds were rounded outward; identifiers and free text are dropped from releases
# (kind: identifier / text). A categorical without `values` must have its domain declared.
"""


def _split(values: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for v in values:
        out.extend(p.strip() for p in v.split(",") if p.strip())
    return out


def _parse_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            fail(f"--option takes key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options


class ProgressLine:
    """Progress on stderr: one rewritten line on a terminal, throttled plain lines otherwise."""

    def __init__(self, stage: str, enabled: bool = True) -> None:
        self.stage = stage
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.last_text = ""

    def __call__(self, fraction: float, message: str = "") -> None:
        if not self.enabled:
            return
        pct = int(round(100 * max(0.0, min(1.0, float(fraction)))))
        text = f"[{self.stage} {pct:3d}%] {message}".rstrip()
        now = time.monotonic()
        if text == self.last_text or (now - self.last < 0.25 and pct < 100):
            return
        self.last, self.last_text = now, text
        if self.tty:
            click.echo("\r" + text[:100].ljust(100), err=True, nl=False)
            if pct >= 100:
                click.echo("", err=True)
        else:
            click.echo(text, err=True)


def _requested_cost(cls: Any, epsilon: str | None, delta: str | None) -> Any:
    from privacy.budget import PrivacyCost, parse_number

    if cls.guarantee == "dp":
        if epsilon is None:
            fail(f"{cls.name} is differentially private: give --epsilon (for example 1.0)")
        eps = parse_number(epsilon, "epsilon")
        dlt = parse_number(delta, "delta") if delta is not None else 0
        return PrivacyCost(eps, dlt)
    if epsilon is not None or delta is not None:
        what = (
            "not differentially private (its cost is epsilon = infinity)"
            if cls.guarantee == "non-dp"
            else "data-free (it reads no data; its cost is zero)"
        )
        fail(f"--epsilon/--delta apply to DP methods only; {cls.name} is {what}")
    return PrivacyCost.non_dp() if cls.guarantee == "non-dp" else PrivacyCost.zero()


def _is_parquet(output: str) -> bool:
    return Path(output).suffix.lower() in (".parquet", ".pq")


def _write_table(df: Any, output: str) -> None:
    path = Path(output)
    if _is_parquet(output):
        df.to_parquet(path, index=False)
        return
    from core.safe_csv import write_safe_csv

    write_safe_csv(df, path)


def _commented_yaml(schema: Any, suggestions: dict[str, Any], *, accepted: bool) -> str:
    """The schema as YAML with the suggestions as comments: all of them on top, each column's above it."""
    import yaml

    from privacy.schema import describe_hierarchy

    verb = "" if accepted else "suggested "
    lines: list[tuple[str, str]] = []  # (column, what is suggested or flagged, and why)
    for q in suggestions["quasi_identifiers"]:
        h = suggestions["hierarchies"].get(q["column"])
        how = f"; hierarchy {describe_hierarchy(h)}" if h else ""
        lines.append((q["column"], f"{verb}quasi-identifier: {q['column']} ({q['reason']}){how}"))
    for q in suggestions["sensitive"]:
        lines.append((q["column"], f"{verb}sensitive: {q['column']} ({q['reason']})"))
    if suggestions["target"]:
        t = suggestions["target"]
        lines.append((t["column"], f"{verb}target: {t['column']} ({t['reason']})"))
    for f in suggestions["flags"]:
        lines.append((f["column"], f"flag {f['issue']} on {f['column']}: {f['message']}"))
    if accepted:
        head = ["# Roles written into the schema from the suggestions (read from the column names and values):"]
    else:
        head = [
            "# Suggested roles, read from the column names and values: accept one by editing the schema",
            "# (quasi_identifiers, sensitive, target, a column's hierarchy), or all with --accept-suggestions.",
        ]
    head += [f"#   {text}" for _, text in lines] or ["#   none"]
    data = schema.to_dict()
    out = [*head, "columns:"]
    for name, spec in data.pop("columns").items():
        out += [f"  # {text}" for column, text in lines if column == name]
        dumped = yaml.safe_dump({name: spec}, sort_keys=False, allow_unicode=True, width=10_000)
        out += ["  " + line for line in dumped.splitlines()]
    rest = yaml.safe_dump(data, sort_keys=False, allow_unicode=True) if data else ""
    return "\n".join(out) + "\n" + rest


def register(cli: click.Group) -> None:
    # ------------------------------------------------------------------------------ schema
    @cli.group("schema")
    def schema_group() -> None:
        """Public schema tools (offline)."""

    @schema_group.command("propose")
    @click.argument("file", type=click.Path(dir_okay=False))
    @click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False),
        default=None,
        help="Where to write the proposal (default: stdout).",
    )
    @click.option("--qi", "qi", multiple=True, help="A quasi-identifier column (repeat, or comma-separated).")
    @click.option("--sensitive", multiple=True, help="A sensitive column (repeat, or comma-separated).")
    @click.option("--target", default=None, help="The prediction target column.")
    @click.option(
        "--max-categories",
        default=100,
        show_default=True,
        type=int,
        help="More distinct values than this: the domain is left for the steward to declare.",
    )
    @click.option(
        "--accept-suggestions",
        is_flag=True,
        help="Write the suggested quasi-identifiers, sensitive columns, target and hierarchies into the schema "
        "(--qi, --sensitive and --target replace the suggested ones) instead of as comments.",
    )
    @click.option("--json", "as_json", is_flag=True, help='Write {"schema": ..., "suggestions": ...} as JSON.')
    @handle_errors
    def propose(
        file: str,
        output: str | None,
        qi: tuple[str, ...],
        sensitive: tuple[str, ...],
        target: str | None,
        max_categories: int,
        accept_suggestions: bool,
        as_json: bool,
    ) -> None:
        """Propose a public schema from FILE (CSV or Parquet), for the steward to edit and confirm.

        Suggested roles (quasi-identifiers, sensitive columns, a target), hierarchies and flags are written
        as comments for the steward to accept by editing, or into the schema with --accept-suggestions.
        """
        from privacy.schema import PublicSchema, apply_suggestions, propose_schema, read_table, suggest_roles

        df = read_table(file)
        qis, sens = _split(qi), _split(sensitive)
        columns = [str(c) for c in df.columns]
        for name in [*qis, *sens, *([target] if target else [])]:
            if name not in columns:
                fail(f"column '{name}' is not in {Path(file).name} (columns: {', '.join(columns)})")
        draft = propose_schema(df, max_categories=max_categories)
        for name in [*qis, *sens, *([target] if target else [])]:
            spec = draft.columns[name]
            if spec.is_dropped:
                fail(
                    f"column '{name}' looks like {'an identifier' if spec.kind == 'identifier' else 'free text'} "
                    "and is dropped from releases; it cannot be a quasi-identifier, sensitive or the target "
                    "(edit its kind in the proposal first)"
                )
        suggestions = suggest_roles(df, draft)
        if accept_suggestions:
            schema = apply_suggestions(draft, suggestions, quasi_identifiers=qis, sensitive=sens, target=target)
        else:
            data = draft.to_dict()
            data["quasi_identifiers"] = qis
            data["sensitive"] = sens
            if target:
                data["target"] = target
            schema = PublicSchema.from_dict(data)
        if as_json:
            text = json.dumps({"schema": schema.to_dict(), "suggestions": suggestions}, indent=2) + "\n"
        else:
            text = PROPOSAL_HEADER.format(name=Path(file).name) + _commented_yaml(
                schema, suggestions, accepted=accept_suggestions
            )
        if output:
            Path(output).write_text(text, encoding="utf-8")
            click.echo(f"wrote {output}", err=True)
        else:
            click.echo(text, nl=False)
        learned = schema.learned_columns
        dropped = [n for n, c in schema.columns.items() if c.is_dropped]
        undeclared = list(schema.open_columns)
        click.echo(
            f"{len(schema.columns)} columns; values learned from the data in {len(learned)} "
            f"({', '.join(learned) or 'none'}); dropped as identifier/text: {', '.join(dropped) or 'none'}; "
            f"domain or bounds to declare: {', '.join(undeclared) or 'none'}",
            err=True,
        )
        target_s = suggestions["target"]
        click.echo(
            f"suggested ({'written into the schema' if accept_suggestions else 'as comments'}): quasi-identifiers "
            f"{', '.join(q['column'] for q in suggestions['quasi_identifiers']) or 'none'}; sensitive "
            f"{', '.join(q['column'] for q in suggestions['sensitive']) or 'none'}; target "
            f"{target_s['column'] if target_s else 'none'}; {len(suggestions['flags'])} flag(s)",
            err=True,
        )

    # ------------------------------------------------------------------------------ synth
    @cli.command("synth")
    @click.argument("file", required=False, type=click.Path(dir_okay=False))
    @click.option(
        "--schema",
        "schema_path",
        type=click.Path(dir_okay=False),
        default=None,
        help="The confirmed public schema (YAML/JSON).",
    )
    @click.option("-m", "--method", required=True, help="A method of `synthgate methods`.")
    @click.option("--epsilon", default=None, help="Privacy budget of this run (DP methods).")
    @click.option("--delta", default=None, help="Delta of this run (zCDP and (epsilon, delta) methods), e.g. 1e-9.")
    @click.option(
        "--rows",
        type=int,
        default=DEFAULT_ROWS,
        show_default=True,
        help="Rows to generate (a fixed default, so that the real row count is not revealed).",
    )
    @click.option("--seed", type=int, default=None, help="Seed, for methods that can be reproduced.")
    @click.option("--option", "options", multiple=True, help="A method option key=value (repeatable).")
    @click.option(
        "-o", "--output", required=True, type=click.Path(dir_okay=False), help="Output file (.csv, or .parquet)."
    )
    @click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
    @click.option("-q", "--quiet", is_flag=True, help="No progress display.")
    @handle_errors
    def synth(
        file: str | None,
        schema_path: str | None,
        method: str,
        epsilon: str | None,
        delta: str | None,
        rows: int,
        seed: int | None,
        options: tuple[str, ...],
        output: str,
        as_json: bool,
        quiet: bool,
    ) -> None:
        """Fit METHOD on FILE under the public schema and write synthetic rows; prints the privacy cost."""
        from privacy.synthesizers import create_synthesizer, synthesizer_class

        cls = synthesizer_class(method)
        requested = _requested_cost(cls, epsilon, delta)
        if rows < 1:
            fail("--rows must be a positive integer")
        if cls.heavy:  # GANs and VAEs: one torch thread, as on the workers (steady time, no spin-waiting)
            from privacy.synthesizers._torch_threads import one_torch_thread

            one_torch_thread()
        synthesizer = create_synthesizer(method, seed=seed, options=_parse_options(options))
        keep_freed_memory()  # a batch of large arrays, allocated and freed one after another
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        if cls.guarantee == "data-free":
            if file or schema_path:
                click.echo(f"note: {method} is data-free; FILE and --schema are not read", err=True)
            synthesizer.preflight(None, requested)
            cost = synthesizer.fit()
        else:
            from privacy.schema import conform_table, load_schema, read_table

            if not file:
                fail(f"{method} needs a data FILE")
            if not schema_path:
                fail(
                    f"{method} needs the public schema: --schema schema.yaml (draft one with `synthgate schema "
                    "propose`)"
                )
            if not Path(schema_path).exists():
                fail(f"schema file not found: {schema_path}")
            schema = load_schema(Path(schema_path))
            synthesizer.preflight(schema, requested)  # refuse before the data is read
            table, _report = conform_table(read_table(file, categories=True), schema, categories=cls.takes_categories)
            timings["load"] = round(time.perf_counter() - t0, 3)
            t1 = time.perf_counter()
            cost = synthesizer.fit(table, schema, requested, progress=ProgressLine("fit", not quiet))
            timings["fit"] = round(time.perf_counter() - t1, 3)
            del table  # the real rows are not needed to sample: their memory is free for the output
        t2 = time.perf_counter()
        # declared text domains as categoricals: the CSV is written from their codes (the same bytes);
        # constraints and the Parquet file take the plain columns
        fitted = synthesizer.schema
        categories = fitted is not None and not fitted.constraints and not _is_parquet(output)
        df = synthesizer.sample(rows, progress=ProgressLine("sample", not quiet), categories=categories)
        timings["sample"] = round(time.perf_counter() - t2, 3)
        from privacy.constraints import enforce_constraints

        df, constraints = enforce_constraints(
            df, synthesizer.schema, resample=synthesizer.sample_more, seed=synthesizer.derived_seed("constraints")
        )
        timings["constraints"] = constraints.seconds
        _write_table(df, output)
        quick_exit_when_done()  # the file is closed; what is left is the summary
        info = cls.info()
        result = {
            "method": method,
            "output": output,
            "rows": len(df),
            "columns": [str(c) for c in df.columns],
            "cost": cost.to_dict(),
            "cost_text": cost.describe(),
            "guarantee": info["guarantee"],
            "releases_real_rows": info["releases_real_rows"],
            "seed": seed,
            "seconds": timings,
            "constraints": constraints.to_dict(),
        }
        if as_json:
            click.echo(json.dumps(result, indent=2))
            return
        click.echo(f"wrote {len(df)} rows x {len(df.columns)} columns to {output}")
        click.echo(f"privacy cost: {cost.describe()}")
        if constraints.constraints:
            click.echo(
                f"constraints: {len(constraints.constraints)} enforced; {constraints.rows_violating} rows "
                f"violated one as sampled, {constraints.rows_resampled} replaced by fresh draws, "
                f"{constraints.rows_repaired} repaired; none left"
            )
        if info["releases_real_rows"]:
            click.echo("warning: this output contains real records from the input file", err=True)

    # ------------------------------------------------------------------------------ stats
    @cli.command("stats")
    @click.argument("file", type=click.Path(dir_okay=False))
    @click.option(
        "--schema",
        "schema_path",
        required=True,
        type=click.Path(dir_okay=False),
        help="The public schema (YAML or JSON) the statistics are measured on.",
    )
    @click.option("--epsilon", required=True, help="Privacy budget of this run.")
    @click.option("--delta", default=None, help="Delta, for --option mechanism=gaussian (zCDP), e.g. 1e-9.")
    @click.option(
        "--option",
        "options",
        multiple=True,
        help="A dp-statistics option key=value (repeatable): statistics, columns, by, quantiles, bins, "
        "bounds_epsilon, overall, mechanism (laplace or gaussian).",
    )
    @click.option(
        "--small-cell-threshold",
        default=10,
        show_default=True,
        type=float,
        help="Counts below this are suppressed with their whole cell (0: none).",
    )
    @click.option(
        "--rounding-base",
        default=5,
        show_default=True,
        type=float,
        help="Counts are rounded to a multiple of this (1: not rounded).",
    )
    @click.option("--seed", type=int, default=None, help="Seed of the noise (keep it secret).")
    @click.option(
        "-o",
        "--output",
        required=True,
        type=click.Path(dir_okay=False),
        help="Where to write: .json (tables, budget and cost) or .csv / .parquet (one long table).",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
    @click.option("-q", "--quiet", is_flag=True, help="No progress display.")
    @handle_errors
    def stats(
        file: str,
        schema_path: str,
        epsilon: str,
        delta: str | None,
        options: tuple[str, ...],
        small_cell_threshold: float,
        rounding_base: float,
        seed: int | None,
        output: str,
        as_json: bool,
        quiet: bool,
    ) -> None:
        """DP counts, means, variances, quantiles and histograms of FILE, with 95% noise intervals.

        The same mechanism as the service's dp-statistics releases, on this machine: the schema's bounds
        and domains, the budget split in the output, small-cell rules applied afterwards.
        """
        from privacy.budget import PrivacyCost, parse_number
        from privacy.schema import conform_table, load_schema, read_table
        from privacy.statistics import dp_statistics, long_table, preflight_statistics, release_tables

        if not Path(schema_path).exists():
            fail(f"schema file not found: {schema_path}")
        if small_cell_threshold < 0 or rounding_base <= 0:
            fail("--small-cell-threshold must be >= 0 and --rounding-base > 0")
        schema = load_schema(Path(schema_path))
        requested = PrivacyCost(
            parse_number(epsilon, "epsilon"), parse_number(delta, "delta") if delta is not None else 0
        )
        opts = _parse_options(options)
        preflight_statistics(schema, requested, opts)  # refuse before the data is read
        table, _report = conform_table(read_table(file), schema)
        t0 = time.perf_counter()
        release = dp_statistics(
            table, schema, requested, options=opts, seed=seed, progress=ProgressLine("measure", not quiet)
        )
        tables, small_cells = release_tables(release, small_cell_threshold, rounding_base)
        seconds = round(time.perf_counter() - t0, 3)
        path = Path(output)
        if path.suffix.lower() == ".json":
            doc = release.to_dict()
            doc["tables"] = {name: json.loads(df.to_json(orient="records")) for name, df in tables.items()}
            doc["small_cells"] = small_cells
            path.write_text(json.dumps(doc, indent=2, default=str))
        else:
            _write_table(long_table(tables), output)
        result = {
            "output": output,
            "tables": {name: len(df) for name, df in tables.items()},
            "cost": release.cost.to_dict(),
            "cost_text": release.cost.describe(),
            "budget": release.budget,
            "seconds": seconds,
        }
        if as_json:
            click.echo(json.dumps(result, indent=2, default=str))
            return
        click.echo(f"wrote {sum(result['tables'].values())} rows of statistics to {output}")
        click.echo(f"privacy cost: {release.cost.describe()}")

    # ------------------------------------------------------------------------------ methods
    @cli.command("methods")
    @click.option("--json", "as_json", is_flag=True, help="Print the catalogue as JSON.")
    @handle_errors
    def methods(as_json: bool) -> None:
        """List the synthesis methods: name, guarantee, description and options."""
        from privacy.synthesizers import method_catalogue

        catalogue = method_catalogue()
        if as_json:
            click.echo(json.dumps(catalogue, indent=2, default=str))
            return
        width = max(len(m["name"]) for m in catalogue)
        for m in catalogue:
            flags = m["guarantee"] + (", zCDP" if m["zcdp"] else "") + (", needs delta" if m["needs_delta"] else "")
            flags += ", releases real rows" if m["releases_real_rows"] else ""
            click.echo(f"{m['name']:<{width}}  [{flags}]  {m['description']}")
            if m["options"]:
                opts = ", ".join(f"{k}={v['default']}" for k, v in m["options"].items())
                click.echo(f"{'':<{width}}  options: {opts}")
