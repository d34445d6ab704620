"""The Python client needs none of the service's machinery: its one project import is the pure bundle check."""

from __future__ import annotations

import subprocess
import sys

from tests.unit.test_layering import PACKAGES, ROOT, all_imports

SERVICE_ONLY = ("flask", "celery", "redis", "sqlalchemy", "alembic", "kombu", "webapp", "workers", "bench")


def test_the_client_imports_only_the_pure_bundle_check_from_the_project() -> None:
    known, found = all_imports(ROOT, PACKAGES)
    client = [imp for imp in found if imp.module.split(".")[0] == "synthgate_client"]
    assert client, "no imports found in synthgate_client/"
    project = {imp.target for imp in client if imp.target in known and not imp.target.startswith("synthgate_client")}
    assert project == {"core.bundle_verify"}


def test_the_bundle_check_imports_no_project_module_and_no_service_library() -> None:
    known, found = all_imports(ROOT, PACKAGES)
    verify = [imp for imp in found if imp.module == "core.bundle_verify"]
    assert verify, "no imports found in core/bundle_verify.py"
    tops = {imp.target.split(".")[0] for imp in verify}
    assert not {imp.target for imp in verify if imp.target in known}, tops
    assert "cryptography" in tops and not tops & {*SERVICE_ONLY, "core", "privacy", "evaluation", "pandas"}


def test_importing_the_client_loads_no_service_library() -> None:
    """In a fresh interpreter: what `import synthgate_client` really loads, transitive imports included."""
    code = (
        "import sys, synthgate_client\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {SERVICE_ONLY!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
