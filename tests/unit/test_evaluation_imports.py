"""The report loads SDMetrics without torch (about 1.5 s of CPU it never uses), and leaves torch importable."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import importlib.util, json, sys
from evaluation.fidelity import _quality_report_class
cls = _quality_report_class()
loaded = "torch" in sys.modules
finders = [type(f).__name__ for f in sys.meta_path]
available = importlib.util.find_spec("torch") is not None
print(json.dumps({"class": cls.__name__, "torch_loaded": loaded, "finders": finders, "torch_available": available}))
"""


def test_sdmetrics_is_loaded_without_torch_and_torch_stays_importable() -> None:
    import json

    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["class"] == "QualityReport"
    assert result["torch_loaded"] is False
    assert "_WithoutTorch" not in result["finders"]  # the finder is gone once SDMetrics is loaded
    assert result["torch_available"] is True  # a later `import torch` (a neural synthesizer) still works
