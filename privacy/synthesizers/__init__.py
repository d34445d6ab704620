"""The synthesizer catalogue: methods looked up by name, imported lazily.

`import privacy.synthesizers` loads no heavy library; `create_synthesizer(name)`
imports only the module the named method lives in.
"""

from __future__ import annotations

import importlib
from typing import Any

from privacy.errors import UnknownMethod
from privacy.synthesizers.base import ProgressCallback, Synthesizer

__all__ = [
    "REGISTRY",
    "ProgressCallback",
    "Synthesizer",
    "create_synthesizer",
    "method_catalogue",
    "method_names",
    "synthesizer_class",
]

# name -> "module:Class". Keep one line per method; modules import their heavy
# dependencies inside the class, never at module top.
REGISTRY: dict[str, str] = {
    # DP, native select-measure-generate engine (numpy/scipy; privacy/engine)
    "mst": "privacy.synthesizers.native:NativeMSTSynthesizer",
    "aim": "privacy.synthesizers.native:NativeAIMSynthesizer",
    # DP, smartnoise-synth
    "mst-smartnoise": "privacy.synthesizers.smartnoise:SmartnoiseMSTSynthesizer",
    "aim-smartnoise": "privacy.synthesizers.smartnoise:SmartnoiseAIMSynthesizer",
    "mwem": "privacy.synthesizers.smartnoise:SmartnoiseMWEMSynthesizer",
    "pacsynth": "privacy.synthesizers.smartnoise:SmartnoisePACSynthSynthesizer",
    "dpctgan": "privacy.synthesizers.smartnoise:SmartnoiseDPCTGANSynthesizer",
    "patectgan": "privacy.synthesizers.smartnoise:SmartnoisePATECTGANSynthesizer",
    # DP, own
    "dp-copula": "privacy.synthesizers.dp_copula:DPCopulaSynthesizer",
    "dp-marginals": "privacy.synthesizers.marginals:DPMarginalsSynthesizer",
    # non-DP, SDV 2.x
    "gaussian-copula": "privacy.synthesizers.sdv:GaussianCopulaSynthesizer",
    "ctgan": "privacy.synthesizers.sdv:CTGANSynthesizer",
    "tvae": "privacy.synthesizers.sdv:TVAESynthesizer",
    "copulagan": "privacy.synthesizers.sdv:CopulaGANSynthesizer",
    # non-DP rebalancing of real rows (imbalanced-learn)
    "smote": "privacy.synthesizers.rebalance:SMOTESynthesizer",
    "borderline-smote": "privacy.synthesizers.rebalance:BorderlineSMOTESynthesizer",
    "adasyn": "privacy.synthesizers.rebalance:ADASYNSynthesizer",
    "smotenc": "privacy.synthesizers.rebalance:SMOTENCSynthesizer",
    # data-free
    "scenario": "privacy.synthesizers.datafree:ScenarioSynthesizer",
    "spec": "privacy.synthesizers.datafree:SpecSynthesizer",
}


def synthesizer_class(name: str) -> type[Synthesizer]:
    try:
        target = REGISTRY[name]
    except KeyError:
        raise UnknownMethod(
            f"unknown method '{name}'; available: {', '.join(sorted(REGISTRY))}", field="method"
        ) from None
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def create_synthesizer(name: str, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Synthesizer:
    return synthesizer_class(name)(seed=seed, options=options)


def method_names() -> list[str]:
    return sorted(REGISTRY)


def method_catalogue() -> list[dict[str, Any]]:
    """Name, description and guarantee of every method (imports each module)."""
    return [synthesizer_class(n).info() for n in method_names()]
