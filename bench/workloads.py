"""The measured work, one function per kind of run; each runs in a fresh process (`run_in_child`).

Every function takes a `Meter` first and records its stages on it; imports of
heavy libraries happen inside the functions, in an `import` stage, so that a
"cold" stage is the first use of a library in a fresh interpreter. Stage names
that the cases compare: `fit_cold`/`sample_cold` (first fit in the process) and
`fit_warm`/`sample_warm` (a second fit in the same process).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import logging
import warnings
from typing import Any

from bench.measure import Meter

__all__ = [
    "FIT_LABELS",
    "engine_scale",
    "library_release",
    "method_fit",
    "native_marginal",
    "report_large",
    "scale_fit",
    "smartnoise_marginal",
    "smartnoise_transformer",
    "synth_engine",
    "two_way_tvd",
]

log = logging.getLogger(__name__)

FIT_LABELS = ("cold", "warm")


@contextlib.contextmanager
def _quiet() -> Any:
    """smartnoise prints to stdout and the libraries warn about their internals: keep the run's output clean."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def two_way_tvd(real: Any, synthetic: Any, schema: Any, bins: int = 32, max_pairs: int = 120) -> dict[str, float]:
    """Average and worst total variation distance over two-way marginals (codes on the public domain).

    Reported next to the timings so that a faster method is seen to produce a
    comparable distribution, not just to return sooner.
    """
    import numpy as np

    from evaluation.metrics import joint_tv_distance
    from privacy.encoding import DomainEncoder

    encoder = DomainEncoder(schema, default_bins=bins)
    rc = encoder.encode(real)
    sc = encoder.encode(synthetic[encoder.columns])
    pairs = list(itertools.combinations(range(len(encoder.columns)), 2))[:max_pairs]
    tvds = [
        joint_tv_distance([rc[:, a], rc[:, b]], [sc[:, a], sc[:, b]], [encoder.sizes[a], encoder.sizes[b]])
        for a, b in pairs
    ]
    return {"mean": round(float(np.mean(tvds)), 4), "max": round(float(np.max(tvds)), 4), "pairs": len(tvds)}


# ---------------------------------------------------------------------------------------------
# cases 1, 2: MST and AIM, native engine against smartnoise-synth called directly
# ---------------------------------------------------------------------------------------------


def native_marginal(
    meter: Meter,
    *,
    method: str,
    rows: int | None,
    columns: list[str] | None,
    epsilon: float,
    delta: float,
    fits: int = 2,
    sample_rows: int | None = None,
    options: dict | None = None,
    seed: int = 0,
) -> None:
    """`mst` or `aim` through synthgate's Synthesizer interface: fit and sample, `fits` times in one process."""
    with meter.stage("import"):
        import privacy.engine.aim  # the engine's import is part of a cold start, measured here
        import privacy.engine.mst  # noqa: F401
        from bench.data import adult_table
        from privacy.budget import PrivacyCost, to_fraction
        from privacy.synthesizers import create_synthesizer
    with meter.stage("load"):
        table, schema = adult_table(rows, columns)
    n_out = sample_rows or len(table)
    requested = PrivacyCost(to_fraction(epsilon), to_fraction(delta))
    for i, label in enumerate(FIT_LABELS[:fits]):
        synth = create_synthesizer(method, seed=seed + i, options=options)
        with meter.stage(f"fit_{label}"):
            cost = synth.fit(table, schema, requested)
        with meter.stage(f"sample_{label}"):
            out = synth.sample(n_out)
        meter.info[f"tvd_{label}"] = two_way_tvd(table, out, schema, bins=synth.options.get("bins", 32))
    meter.info.update(
        method=method,
        rows=len(table),
        columns=len(schema.synthesized_columns),
        sample_rows=n_out,
        cost=cost.to_dict(),
        options=synth.options,
    )


def smartnoise_transformer(sizes: list[int]) -> Any:
    """smartnoise's own TableTransformer of LabelTransformers, fitted on the public code range of each column.

    Fitting on the domain (not the data) gives every column exactly its
    declared cardinality, the domain the native engine uses, and needs no epsilon.
    """
    import numpy as np
    import pandas as pd
    from snsynth.transform.label import LabelTransformer
    from snsynth.transform.table import TableTransformer

    longest = max(sizes)
    domain = pd.DataFrame({f"c{j}": np.arange(longest) % s for j, s in enumerate(sizes)})
    transformer = TableTransformer([LabelTransformer(nullable=False) for _ in sizes])
    transformer.fit(domain)
    return transformer


def smartnoise_marginal(
    meter: Meter,
    *,
    algo: str,
    rows: int | None,
    columns: list[str] | None,
    epsilon: float,
    delta: float,
    fits: int = 2,
    sample_rows: int | None = None,
    bins: int = 32,
    aim_options: dict | None = None,
    seed: int = 0,
) -> None:
    """smartnoise-synth's MSTSynthesizer / AIMSynthesizer called directly, on the same codes and domain.

    The table is encoded on the public domain with the `DomainEncoder` the
    native methods use (stage `encode`); smartnoise then fits on those codes with
    its stock synthesizer and stock transformers, and its sampled codes are
    decoded back to values the same way (inside the `sample_*` stages).
    """
    with meter.stage("import"):
        import numpy as np
        import pandas as pd
        from snsynth.aim import AIMSynthesizer
        from snsynth.mst import MSTSynthesizer

        from bench.data import adult_table
        from privacy.encoding import DomainEncoder
    with meter.stage("load"):
        table, schema = adult_table(rows, columns)
    with meter.stage("encode"):
        encoder = DomainEncoder(schema, default_bins=bins)
        codes = pd.DataFrame(encoder.encode(table).astype(np.int64), columns=encoder.columns)
    n_out = sample_rows or len(table)
    rng = np.random.default_rng(seed)
    for label in FIT_LABELS[:fits]:
        with meter.stage(f"fit_{label}"), _quiet():
            transformer = smartnoise_transformer(encoder.sizes)
            if algo == "mst":
                model = MSTSynthesizer(epsilon=float(epsilon), delta=float(delta))
            elif algo == "aim":
                model = AIMSynthesizer(epsilon=float(epsilon), delta=float(delta), **(aim_options or {}))
            else:
                raise ValueError(f"unknown smartnoise algorithm {algo!r}")
            model.fit(codes, transformer=transformer, preprocessor_eps=0.0)
        with meter.stage(f"sample_{label}"), _quiet():
            raw = np.asarray(model.sample(n_out), dtype=np.int64).reshape(n_out, len(encoder.columns))
            out = encoder.decode(raw, rng)
        meter.info[f"tvd_{label}"] = two_way_tvd(table, out, schema, bins=bins)
    meter.info.update(
        library=f"smartnoise-synth {algo.upper()}Synthesizer",
        rows=len(table),
        columns=len(encoder.columns),
        sample_rows=n_out,
        domain_sizes=encoder.sizes,
    )


# ---------------------------------------------------------------------------------------------
# case 3: the library calls of one release, as workers/pipeline.py makes them
# ---------------------------------------------------------------------------------------------


def library_release(
    meter: Meter,
    *,
    csv_path: str,
    schema_path: str,
    method: str,
    epsilon: float,
    delta: float,
    rows: int,
    seed: int,
    policy: dict | None = None,
    holdout: float = 0.2,
    options: dict | None = None,
    passes: int = 2,
) -> None:
    """conform -> split -> fit -> sample -> disclosure control -> report, called directly in one process.

    The same calls, arguments and order as the release pipeline
    (workers/pipeline.py), without the database, queue, progress updates and
    artifact storage. The sequence runs `passes` times: the first (`*_cold`)
    pays for the libraries' lazy imports like a fresh worker's first release,
    the second (`*_warm`) is comparable to a warm worker. A last stage per pass,
    `serialise` (CSV, Parquet, JSON and HTML of the artifacts, in memory), is
    measured apart: it is service work, not library work.
    """
    with meter.stage("import"):
        from core.bundle import safe_csv_bytes
        from evaluation import build_report, split_holdout
        from evaluation._common import release_limits
        from privacy.budget import PrivacyCost, to_fraction
        from privacy.disclosure import apply_disclosure_control, real_row_checks, recode_like
        from privacy.policy import DatasetPolicy
        from privacy.schema import conform_table, load_schema, read_table
        from privacy.synthesizers import create_synthesizer

    schema = load_schema(schema_path)
    pol = DatasetPolicy.from_dict(policy)
    requested = PrivacyCost(to_fraction(epsilon), to_fraction(delta))
    thresholds = {
        "min_fidelity": pol.min_fidelity,
        "min_utility_ratio": pol.min_utility_ratio,
        "max_membership_auc": pol.max_membership_auc,
        "max_exact_match_rate": pol.max_exact_match_rate,
        "warn_margin": pol.warn_margin,
    }
    for label in FIT_LABELS[:passes]:
        synth = create_synthesizer(method, seed=seed, options=options)
        with meter.stage(f"load_{label}"):
            synth.preflight(schema, requested)
            table, conform_report = conform_table(read_table(csv_path), schema)
        with meter.stage(f"split_{label}"):
            train, test, _info = split_holdout(
                table, schema, target=schema.target, holdout=holdout, seed=seed % (2**32)
            )
            del table
        with meter.stage(f"fit_{label}"):
            cost = synth.fit(train, schema, requested)
        with meter.stage(f"sample_{label}"):
            synthetic = synth.sample(rows)
        with meter.stage(f"postprocess_{label}"):
            released, released_schema, disclosure = apply_disclosure_control(synthetic, schema, pol)
            del synthetic
            released, _real_checks = real_row_checks(released, train, schema, pol, disclosure=disclosure)
        with meter.stage(f"evaluate_{label}"):
            train_view = recode_like(train, disclosure)
            test_view = recode_like(test, disclosure)
            rows_in = len(train_view) + len(test_view)
            del train, test
            report = build_report(
                train_view,
                test_view,
                released,
                released_schema,
                schema.target,
                thresholds=thresholds,
                seed=seed % (2**32),
                limits=release_limits(),
            )
            del train_view, test_view
        with meter.stage(f"serialise_{label}") as extra:
            buf = io.BytesIO()
            released.to_parquet(buf, index=False)
            files = {
                "data.csv": safe_csv_bytes(released),
                "data.parquet": buf.getvalue(),
                "report.json": json.dumps(report.to_dict(include_internal=True), default=str).encode(),
                "report_public.json": json.dumps(report.to_dict(include_internal=False), default=str).encode(),
                "report.html": report.to_html(include_internal=True).encode(),
                "report_public.html": report.to_html(include_internal=False).encode(),
            }
            extra["bytes"] = sum(len(v) for v in files.values())
    meter.info.update(
        method=method,
        rows_in=rows_in,
        rows_out=len(released),
        cost=cost.to_dict(),
        conform=conform_report.to_dict(),
        fidelity=report.summary.get("fidelity_score"),
    )


# ---------------------------------------------------------------------------------------------
# case 4: the full report on a large generated table
# ---------------------------------------------------------------------------------------------


def report_large(meter: Meter, *, rows: int, columns: int, seed: int = 0) -> None:
    """`evaluation.build_report` on rows x columns (generated by evaluation._bench's latent-factor model)."""
    with meter.stage("import"):
        from evaluation import build_report, split_holdout
        from evaluation._bench import make_schema, make_table
    with meter.stage("generate") as extra:
        schema = make_schema(columns)
        real = make_table(schema, rows, seed)
        synthetic = make_table(schema, rows, seed + 1, shift=0.1)
        extra["table_mib"] = round((real.memory_usage(deep=True).sum()) / 2**20, 1)
    with meter.stage("split"):
        train, holdout, _ = split_holdout(real, schema, seed=seed)
        del real
    marks: list[str] = []
    with meter.stage("report"):
        report = build_report(
            train,
            holdout,
            synthetic,
            schema,
            seed=seed,
            thresholds={
                "min_fidelity": 0.6,
                "min_utility_ratio": 0.7,
                "max_membership_auc": 0.6,
                "max_exact_match_rate": 0.0,
                "warn_margin": 0.1,
            },
            progress=lambda f, m: marks.append(m),
        )
    with meter.stage("html"):
        report.to_html(True)
        report.to_html(False)
    meter.info.update(
        rows=rows,
        columns=len(schema.columns),
        sections_s={k: s.seconds for k, s in report.sections.items()},
        statuses={k: s.status for k, s in report.sections.items()},
    )


# ---------------------------------------------------------------------------------------------
# case 6 and the per-method table
# ---------------------------------------------------------------------------------------------


def _requested(cls: Any, epsilon: float, delta: float) -> Any:
    from privacy.budget import PrivacyCost, to_fraction

    if cls.guarantee == "non-dp":
        return PrivacyCost.non_dp()
    if cls.guarantee == "data-free":
        return PrivacyCost.zero()
    return PrivacyCost(to_fraction(epsilon), to_fraction(delta) if cls.needs_delta else 0)


def scale_fit(
    meter: Meter, *, method: str, rows: int, epsilon: float, delta: float, seed: int = 0, options: dict | None = None
) -> None:
    """Fit `method` on adult resampled with replacement to `rows` rows, then sample as many rows."""
    with meter.stage("import"):
        from bench.data import adult_table
        from privacy.synthesizers import create_synthesizer, synthesizer_class

        cls = synthesizer_class(method)
        synth = create_synthesizer(method, seed=seed, options=options)
    with meter.stage("prepare") as extra:
        table, schema = adult_table(rows, None, seed=seed, replace=True)
        extra["table_mib"] = round(table.memory_usage(deep=True).sum() / 2**20, 1)
    requested = _requested(cls, epsilon, delta)
    with meter.stage("fit"), _quiet():
        synth.fit(table, schema, requested)
    with meter.stage("sample"), _quiet():
        out = synth.sample(rows)
    meter.info.update(method=method, rows=rows, sample_rows=len(out), columns=len(schema.synthesized_columns))


def method_fit(
    meter: Meter,
    *,
    method: str,
    rows: int | None,
    epsilon: float,
    delta: float,
    sample_rows: int,
    seed: int = 0,
    options: dict | None = None,
) -> None:
    """One registered method on adult (all rows, or a sample of `rows`): import, fit, sample."""
    with meter.stage("import"):
        from bench.data import adult_table
        from privacy.synthesizers import create_synthesizer, synthesizer_class

        cls = synthesizer_class(method)
        synth = create_synthesizer(method, seed=seed, options=options)
    requested = _requested(cls, epsilon, delta)
    if cls.guarantee == "data-free":
        with meter.stage("fit"), _quiet():
            synth.fit()
        n_in = 0
    else:
        with meter.stage("load"):
            table, schema = adult_table(rows, None, seed=seed)
        with meter.stage("fit"), _quiet():
            synth.fit(table, schema, requested)
        n_in = len(table)
    with meter.stage("sample"), _quiet():
        out = synth.sample(sample_rows)
    meter.info.update(
        method=method,
        guarantee=cls.guarantee,
        rows=n_in,
        sample_rows=len(out),
        options={k: v for k, v in (options or {}).items() if k != "spec"},
    )


# ---------------------------------------------------------------------------------------------
# case 8: the native engine on encoded tables of 1M and 10M rows
# ---------------------------------------------------------------------------------------------
def engine_scale(
    meter: Meter, *, method: str, rows: int, epsilon: float, delta: float, seed: int = 0, options: dict | None = None
) -> None:
    """The marginal engine alone (`fit_mst` / `fit_aim`) on adult's codes resampled to `rows` rows.

    The table is built column by column on the public domain (no DataFrame of
    `rows` rows exists), so the process's memory above the baseline taken just
    before it (after a warm-up fit on adult itself) is the encoded table plus
    what the engine adds; the info records the baseline and the table's bytes
    for the memory ratio.
    """
    import gc

    from bench.measure import current_rss_mib

    with meter.stage("import"):
        import numpy as np

        from bench.data import adult_table
        from privacy.budget import PrivacyCost, to_fraction
        from privacy.encoding import DomainEncoder, smallest_uint
        from privacy.engine.accounting import request_rho
        from privacy.engine.aim import fit_aim
        from privacy.engine.mst import fit_mst
        from privacy.engine.table import EncodedTable

        table, schema = adult_table(None, None, seed=seed)
        encoder = DomainEncoder(schema)
        base = encoder.encode(table)
        source = [np.ascontiguousarray(base[:, j]) for j in range(base.shape[1])]
        rho = request_rho(PrivacyCost(to_fraction(epsilon), to_fraction(delta)))
        fit = fit_mst if method == "mst" else fit_aim
    rng = np.random.default_rng(seed)
    with meter.stage("warm-up"):
        # one fit and sample on adult itself, so that the code the engine loads lazily and the
        # allocator's one-time growth are in the baseline, not counted against the large table
        fit(EncodedTable(base, encoder.sizes), rho, rng, **(options or {})).sample_codes(len(base), rng)
        del table, base
    gc.collect()
    baseline = current_rss_mib()
    with meter.stage("prepare") as extra:
        encoded = EncodedTable.__new__(EncodedTable)
        encoded.sizes = tuple(int(s) for s in encoder.sizes)
        encoded.n_rows = rows
        encoded.columns = [np.empty(rows, dtype=smallest_uint(max(s - 1, 0))) for s in encoded.sizes]
        step = 1 << 20
        for start in range(0, rows, step):
            idx = rng.integers(0, len(source[0]), min(step, rows - start))
            for col, src in zip(encoded.columns, source, strict=True):
                col[start : start + len(idx)] = src[idx]
        del idx
        table_mib = sum(c.nbytes for c in encoded.columns) / 2**20
        extra["table_mib"] = round(table_mib, 1)
    with meter.stage("fit"):
        result = fit(encoded, rho, rng, **(options or {}))
    with meter.stage("sample"):
        out = result.sample_codes(rows, rng)
    meter.info.update(
        method=method,
        rows=rows,
        columns=len(encoded.sizes),
        baseline_rss_mib=baseline,
        table_mib=round(table_mib, 2),
        sample_rows=len(out),
        options=options or {},
    )


# ---------------------------------------------------------------------------------------------
# case 9: the engine's part of `synthgate synth --method mst` on the same CSV
# ---------------------------------------------------------------------------------------------
def synth_engine(
    meter: Meter, *, csv_path: str, schema_path: str, rows: int, epsilon: float, delta: float, seed: int = 0
) -> None:
    """`synthgate synth`'s stages in one process: read the CSV (text columns dictionary-encoded, as the
    command reads it) and conform it, encode it, the engine's fit and sample (`fit_mst` and `sample_codes`
    with mst's default options, on the schema's default bins), decode, enforce the schema and write the
    CSV file. fit + sample is the engine's CPU the whole process is compared with."""
    with meter.stage("import"):
        from pathlib import Path

        import numpy as np

        from core.safe_csv import write_safe_csv
        from privacy.budget import PrivacyCost, to_fraction
        from privacy.encoding import DomainEncoder
        from privacy.engine.accounting import request_rho
        from privacy.engine.mst import fit_mst
        from privacy.engine.table import EncodedTable
        from privacy.schema import conform_table, enforce_schema, load_schema, read_table
        from privacy.synthesizers import create_synthesizer

        options = create_synthesizer("mst", seed=seed).options
        rho = request_rho(PrivacyCost(to_fraction(epsilon), to_fraction(delta)))
        schema = load_schema(Path(schema_path))
    rng = np.random.default_rng(seed)
    with meter.stage("read"):
        raw = read_table(csv_path, categories=True)
    with meter.stage("conform"):
        table, _report = conform_table(raw, schema, categories=True)  # as `synthgate synth` for mst
        del raw
    with meter.stage("encode"):
        encoder = DomainEncoder(schema)
        encoded = EncodedTable(encoder.encode(table), encoder.sizes)
        del table
    with meter.stage("fit"):
        result = fit_mst(encoded, rho, rng, iters=options["iters"], compress=options["compress"])
    with meter.stage("sample"):
        codes = result.sample_codes(rows, rng)
    with meter.stage("decode"):
        out = enforce_schema(encoder.decode(codes, rng), schema, seed=seed, categories=True)  # as `synthgate synth`
    with meter.stage("write"):
        target = Path(csv_path).with_name("stages-out.csv")
        write_safe_csv(out, target)  # as `synthgate synth` writes its CSV
        size = target.stat().st_size
    meter.info.update(rows=rows, columns=len(encoder.sizes), csv_bytes=size, options=options)
