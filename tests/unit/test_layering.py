"""The package layering, checked from the source with `ast`.

Every module under the project packages is parsed; every import in it
(module level and inside functions, relative imports resolved) is checked
against the rules below, which docs/architecture.md draws as a picture:

- privacy/ and evaluation/ are pure libraries: no flask, celery, redis,
  sqlalchemy, alembic, and none of core, workers, webapp, bench;
- core/ imports none of workers, webapp, bench;
- workers/ imports neither webapp nor bench;
- only the CLI itself imports the CLI package (webapp.cli);
- bench/ imports no part of webapp (core, privacy, evaluation and workers are fine).

And the graph of module-level imports between project modules (imports under
`if TYPE_CHECKING:` left out, as they never run) has no cycle.

The self-tests at the bottom run the same checker on a synthetic tree, so the
checks cannot pass because they found nothing to look at.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "privacy", "evaluation", "workers", "webapp", "bench", "synthgate_client")
CLI = "webapp.cli"

# (layer whose modules are checked, top-level names it may not import, why)
FORBIDDEN: tuple[tuple[str, frozenset[str], str], ...] = (
    (
        "privacy",
        frozenset({"flask", "celery", "redis", "sqlalchemy", "alembic", "core", "workers", "webapp", "bench"}),
        "privacy/ is a pure library",
    ),
    (
        "evaluation",
        frozenset({"flask", "celery", "redis", "sqlalchemy", "alembic", "core", "workers", "webapp", "bench"}),
        "evaluation/ is a pure library",
    ),
    ("core", frozenset({"workers", "webapp", "bench"}), "core/ sits below workers, webapp and bench"),
    ("workers", frozenset({"webapp", "bench"}), "workers/ sits below webapp and bench"),
    ("bench", frozenset({"webapp"}), "bench/ may use core, privacy, evaluation and workers, not webapp"),
    (
        "synthgate_client",
        frozenset({"flask", "celery", "redis", "sqlalchemy", "alembic", "webapp", "workers", "bench"}),
        "synthgate_client talks to the service through its API only (core.bundle_verify is its one project import)",
    ),
)


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the imported module, resolved to the deepest module that exists when it is a project one
    line: int
    module_level: bool  # runs when the module is imported (not inside a function)
    type_checking: bool  # under `if TYPE_CHECKING:`

    def __str__(self) -> str:
        return f"{self.module} (line {self.line}) imports {self.target}"


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def discover(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Module name -> file, for every .py file in the packages under root."""
    modules: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if "__pycache__" in parts:
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    if isinstance(test, ast.Attribute):
        return test.attr == "TYPE_CHECKING"
    return False


def _resolve(name: str, known: dict[str, Path]) -> str:
    """The deepest prefix of a dotted name that is a project module (or the name itself if none is)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return name


def imports_of(module: str, path: Path, known: dict[str, Path]) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[Import] = []

    def add(target: str, node: ast.stmt, module_level: bool, type_checking: bool) -> None:
        found.append(Import(module, _resolve(target, known), node.lineno, module_level, type_checking))

    def visit(node: ast.AST, module_level: bool, type_checking: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node, module_level, type_checking)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                if node.level > 1:
                    base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            for alias in node.names:
                # `from pkg import sub` imports the submodule when there is one
                full = f"{prefix}.{alias.name}"
                add(full if full in known else prefix, node, module_level, type_checking)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            module_level = False
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, module_level, True)
            for child in node.orelse:
                visit(child, module_level, type_checking)
            visit(node.test, module_level, type_checking)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, module_level, type_checking)

    visit(tree, True, False)
    return found


def all_imports(root: Path, packages: tuple[str, ...]) -> tuple[dict[str, Path], list[Import]]:
    known = discover(root, packages)
    found: list[Import] = []
    for module, path in known.items():
        found.extend(imports_of(module, path, known))
    return known, found


def violations(found: list[Import], cli: str = CLI) -> list[str]:
    problems: list[str] = []
    for imp in found:
        top = imp.target.split(".")[0]
        for layer, banned, why in FORBIDDEN:
            if _within(imp.module, layer) and top in banned:
                problems.append(f"{imp}: {why}")
        if _within(imp.target, cli) and not _within(imp.module, cli):
            problems.append(f"{imp}: only the CLI imports the CLI package {cli}")
    return problems


def cycles(known: dict[str, Path], found: list[Import], *, function_level: bool = False) -> list[list[str]]:
    """The strongly connected components (more than one module, or a self-import) of module-level imports,
    or of every import that runs (function-level ones too) with `function_level`."""
    graph: dict[str, set[str]] = {m: set() for m in known}
    for imp in found:
        if (imp.module_level or function_level) and not imp.type_checking and imp.target in known:
            graph[imp.module].add(imp.target)

    # Tarjan's algorithm, iterative so deep graphs cannot overflow the stack
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    components.append(sorted(component))
    return sorted(components)


# ----- the project ---------------------------------------------------------------------------------------


def test_the_checker_sees_the_project() -> None:
    known, found = all_imports(ROOT, PACKAGES)
    for package in PACKAGES:
        assert any(_within(m, package) and m != package for m in known), f"no modules found in {package}/"
    assert len(known) > 50
    assert any(imp.module_level for imp in found) and any(not imp.module_level for imp in found)


def test_packages_import_only_what_their_layer_allows() -> None:
    _, found = all_imports(ROOT, PACKAGES)
    problems = violations(found)
    assert not problems, "layering violations:\n" + "\n".join(problems)


def test_module_level_imports_have_no_cycle() -> None:
    known, found = all_imports(ROOT, PACKAGES)
    found_cycles = cycles(known, found)
    assert not found_cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found_cycles)


def test_no_cycle_even_through_imports_inside_functions() -> None:
    """An import inside a function that closes a cycle only hides it: none is left."""
    known, found = all_imports(ROOT, PACKAGES)
    found_cycles = cycles(known, found, function_level=True)
    assert not found_cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found_cycles)


MAX_MODULE_LINES = 600


def test_no_module_is_over_600_lines() -> None:
    """A module that outgrows 600 lines is split along its seams; generated migrations are exempt."""
    known = discover(ROOT, PACKAGES)
    assert len(known) > 100  # the check reads the project, not an empty tree
    too_long = {
        name: n
        for name, path in known.items()
        if "migrations.versions" not in name and (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines: {too_long}"


# ----- the checker on a synthetic tree -------------------------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_the_checker_reports_a_violation_naming_module_and_import(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "privacy/__init__.py": "",
            "privacy/pure.py": "def f():\n    import flask\n    from ..core import db\n",
            "privacy/sub/__init__.py": "",
            "privacy/sub/deep.py": "from ...webapp.cli import main\n",
            "core/__init__.py": "",
            "core/db.py": "import sqlalchemy\n",
            "core/uses_worker.py": "from workers import jobs\n",
            "workers/__init__.py": "",
            "workers/jobs.py": "import core.db\n",
            "webapp/__init__.py": "",
            "webapp/pages.py": "from webapp.cli._demo import seed\n",
            "webapp/cli/__init__.py": "from . import _demo\n",
            "webapp/cli/_demo.py": "import webapp.pages\n",
            "bench/__init__.py": "",
            "bench/cases.py": "import workers.jobs\nfrom webapp.cli import main\n",
        },
    )
    _known, found = all_imports(tmp_path, PACKAGES)
    problems = violations(found)
    text = "\n".join(problems)
    assert "privacy.pure (line 2) imports flask" in text  # function-level import
    assert "privacy.pure (line 3) imports core.db" in text  # relative import, resolved
    assert "privacy.sub.deep (line 1) imports webapp.cli" in text
    assert "core.uses_worker (line 1) imports workers.jobs" in text
    assert "webapp.pages (line 1) imports webapp.cli._demo" in text
    assert "bench.cases (line 2) imports webapp.cli" in text
    # allowed imports are not reported
    assert "core.db" not in [p.split(" ")[0] for p in problems]
    assert not any(p.startswith(("workers.jobs", "webapp.cli")) for p in problems)
    assert not any("imports workers.jobs" in p and p.startswith("bench") for p in problems)


def test_the_checker_reports_a_cycle_but_not_a_function_level_or_type_checking_one(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "evaluation/__init__.py": "",
            "evaluation/a.py": "from evaluation.b import g\n",
            "evaluation/b.py": "from . import c\n",
            "evaluation/c.py": "from .a import f\n",
            "evaluation/d.py": "def h():\n    from evaluation.e import x\n",
            "evaluation/e.py": "from evaluation.d import h\n",
            "evaluation/f.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from evaluation.g import y\n"
            ),
            "evaluation/g.py": "import evaluation.f\n",
        },
    )
    known, found = all_imports(tmp_path, ("evaluation",))
    assert cycles(known, found) == [["evaluation.a", "evaluation.b", "evaluation.c"]]
    assert cycles(known, found, function_level=True) == [
        ["evaluation.a", "evaluation.b", "evaluation.c"],
        ["evaluation.d", "evaluation.e"],
    ]
