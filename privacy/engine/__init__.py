"""A select-measure-generate engine for marginal-based DP synthesis, in numpy and scipy.

    table = EncodedTable(DomainEncoder(schema).encode(df), encoder.sizes)
    fit = fit_mst(table, rho, rng)          # or fit_aim(...)
    codes = fit.sample_codes(n, rng)

* `table`: the compact encoded table; marginals by bincount over combined codes.
* `accounting`: every privacy decision (the rho of each step, the splits).
* `mechanisms`: Gaussian measurement and exponential-mechanism selection.
* `junction_tree`, `estimation`, `model`: Private-PGM style estimation (mirror
  descent over clique potentials with exact message passing) and sampling.
* `mst`, `aim`: the two mechanisms.

Importing this package loads numpy only; no JAX, torch or smartnoise.
"""

from privacy.engine.accounting import AIMSchedule, MSTSplit, Step, ZCDPLedger, mst_split, request_rho
from privacy.engine.aim import fit_aim
from privacy.engine.estimation import MarginalEstimator, Measurement
from privacy.engine.junction_tree import JunctionTree, build_junction_tree
from privacy.engine.model import GraphicalModel
from privacy.engine.mst import fit_mst
from privacy.engine.result import DomainCompression, EngineFit
from privacy.engine.table import EncodedTable

__all__ = [
    "AIMSchedule",
    "DomainCompression",
    "EncodedTable",
    "EngineFit",
    "GraphicalModel",
    "JunctionTree",
    "MSTSplit",
    "MarginalEstimator",
    "Measurement",
    "Step",
    "ZCDPLedger",
    "build_junction_tree",
    "fit_aim",
    "fit_mst",
    "mst_split",
    "request_rho",
]
