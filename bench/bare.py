"""A fresh interpreter running smartnoise-synth alone: the bare-library side of "process against process".

    python -m bench.bare mst FILE SCHEMA --epsilon 1 --delta 1e-9 --rows N -o OUT.csv

Does what `synthgate synth FILE --schema SCHEMA --method mst` does, with
smartnoise's stock MSTSynthesizer (or AIMSynthesizer) in place of the native
engine: read the CSV, conform it to the public schema, encode it on the
declared domain, fit, sample N rows, decode and write a CSV. Nothing else is
imported: no Flask, no Celery, no synthgate CLI.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import warnings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("algo", choices=["mst", "aim"])
    parser.add_argument("file")
    parser.add_argument("schema")
    parser.add_argument("--epsilon", type=float, required=True)
    parser.add_argument("--delta", type=float, default=1e-9)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--bins", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=None, help="AIM rounds (default 16 x columns)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args(argv)

    import numpy as np
    import pandas as pd

    from bench.workloads import smartnoise_transformer
    from privacy.encoding import DomainEncoder
    from privacy.schema import conform_table, load_schema, read_table

    schema = load_schema(args.schema)
    table, _report = conform_table(read_table(args.file), schema)
    encoder = DomainEncoder(schema, default_bins=args.bins)
    codes = pd.DataFrame(encoder.encode(table).astype(np.int64), columns=encoder.columns)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if args.algo == "mst":
            from snsynth.mst import MSTSynthesizer

            model = MSTSynthesizer(epsilon=args.epsilon, delta=args.delta)
        else:
            from snsynth.aim import AIMSynthesizer

            model = AIMSynthesizer(epsilon=args.epsilon, delta=args.delta, rounds=args.rounds)
        model.fit(codes, transformer=smartnoise_transformer(encoder.sizes), preprocessor_eps=0.0)
        raw = np.asarray(model.sample(args.rows), dtype=np.int64).reshape(args.rows, len(encoder.columns))
    out = encoder.decode(raw, np.random.default_rng(args.seed))
    out.to_csv(args.output, index=False)


if __name__ == "__main__":
    main()
