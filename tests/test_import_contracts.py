"""Import contracts: the dependency arrows of ARCHITECTURE.md, checked on the source (AST, no imports run).

Every ``import`` / ``from ... import`` of every module under ``adaptive/``, ``models/`` and
``decision_rules/`` counts, also those inside functions (a lazy import is still a dependency);
imports under ``if TYPE_CHECKING:`` do not (they never run). Importing ``a.b.c`` runs ``a`` and ``a.b``
too, so a module depends on the packages above every module it imports. Contracts on a package are
checked over the transitive closure of the project's own modules: ``adaptive.report`` may not reach
``models`` through ``adaptive.robustness`` either. Dynamic imports (``importlib.import_module``) are
not seen.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("adaptive", "models", "decision_rules")


@dataclass(frozen=True)
class Forbidden:
    """Modules under ``sources`` (and every project module they reach) import nothing under ``forbidden``."""

    name: str
    sources: tuple[str, ...]
    forbidden: tuple[str, ...]


FORBIDDEN = (
    Forbidden(
        "decision_rules sees posterior draws only",
        ("decision_rules",),
        ("models", "adaptive", "pymc", "pytensor", "nutpie"),
    ),
    Forbidden(
        "models never imports the orchestration or the rules", ("models",), ("adaptive", "decision_rules")
    ),
    Forbidden("the memo never refits", ("adaptive.report",), ("models", "pymc")),
)

# Only these modules may import `adaptive.cli` (the console entry point imports it by name).
CLI_IMPORTERS = {"adaptive.cli", "adaptive.__main__"}

# Known violations, each with its reason: (contract name, importing module, imported module).
ALLOWED: set[tuple[str, str, str]] = set()


def _under(name: str, prefixes: tuple[str, ...] | set[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool) -> None:
        self.package = module if is_package else module.rpartition(".")[0]
        self.names: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.names.update(alias.name for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")
            base = base[: len(base) - (node.level - 1)]
            target = ".".join([*base, node.module] if node.module else base)
        else:
            target = node.module or ""
        self.names.add(target)
        # `from pkg import sub` imports the submodule `pkg.sub` when there is one (kept if it is a module)
        self.names.update(f"{target}.{alias.name}" for alias in node.names if alias.name != "*")


def module_imports(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    """Each project module's direct imports: project modules (with their parent packages) and externals."""
    files: dict[str, Path] = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            rel = path.relative_to(root).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            files[".".join(parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        visitor = _Imports(name, path.name == "__init__.py")
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        resolved: set[str] = set()
        for imported in visitor.names:
            if imported.split(".")[0] in packages:
                # a project name that is not a module is an attribute of the module above it
                while imported and imported not in files:
                    imported = imported.rpartition(".")[0]
                resolved.update(p for p in _parents(imported) if p in files)
            else:
                resolved.add(imported)
        resolved.discard(name)
        graph[name] = resolved
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> dict[str, list[str]]:
    """Project modules reachable from ``start``, each with one import chain that reaches it."""
    chains = {start: [start]}
    todo = [start]
    while todo:
        mod = todo.pop()
        for nxt in sorted(graph.get(mod, ())):
            if nxt in graph and nxt not in chains:
                chains[nxt] = [*chains[mod], nxt]
                todo.append(nxt)
    return chains


def violations(graph: dict[str, set[str]], allowed: set[tuple[str, str, str]] = ALLOWED) -> list[str]:
    """Every broken contract as a sentence with the import chain that breaks it."""
    found: set[str] = set()
    for contract in FORBIDDEN:
        for source in sorted(m for m in graph if _under(m, contract.sources)):
            for mod, chain in reachable(graph, source).items():
                for imported in sorted(graph[mod]):
                    if _under(imported, contract.forbidden) and (contract.name, mod, imported) not in allowed:
                        found.add(f"{contract.name}: {' -> '.join([*chain, imported])}")
    for mod, imports in graph.items():
        if "adaptive.cli" in imports and mod not in CLI_IMPORTERS:
            found.add(f"only the CLI imports adaptive.cli: {mod} -> adaptive.cli")
    return sorted(found)


def test_the_codebase_keeps_its_import_contracts():
    graph = module_imports(ROOT)
    assert {"adaptive.cli", "adaptive.report.data", "models.exact", "decision_rules.beta"} <= graph.keys()
    assert violations(graph) == []


def test_allowlist_entries_are_still_needed():
    """An allowlisted violation that was fixed must leave the list (the list only shrinks)."""
    graph = module_imports(ROOT)
    for contract, mod, imported in ALLOWED:
        assert imported in graph.get(mod, set()), (contract, mod, imported)


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


BASE = {
    "adaptive/__init__.py": "",
    "adaptive/cli.py": "from adaptive.report import render\n",
    "adaptive/helpers.py": "import numpy as np\n",
    "adaptive/report/__init__.py": "from .render import build\n",
    "adaptive/report/render.py": "from adaptive import helpers\n\ndef build():\n    pass\n",
    "models/__init__.py": "",
    "models/exact.py": "import scipy\n",
    "decision_rules/__init__.py": "",
    "decision_rules/beta.py": "from scipy import integrate\nfrom . import vocabulary\n",
    "decision_rules/vocabulary.py": "import enum\n",
}


def test_a_clean_synthetic_project_passes(tmp_path):
    _write(tmp_path, BASE)
    graph = module_imports(tmp_path)
    assert graph["decision_rules.beta"] == {
        "scipy",
        "scipy.integrate",
        "decision_rules",
        "decision_rules.vocabulary",
    }
    assert violations(graph) == []


@pytest.mark.parametrize(
    ("rel", "text", "message"),
    [
        # direct, relative and lazy imports
        ("decision_rules/vocabulary.py", "import pymc as pm\n", "decision_rules.vocabulary -> pymc"),
        ("decision_rules/beta.py", "from ..models import exact\n", "decision_rules.beta -> models.exact"),
        (
            "decision_rules/beta.py",
            "def f():\n    from pytensor import tensor\n",
            "decision_rules.beta -> pytensor",
        ),
        ("models/exact.py", "from decision_rules.beta import x\n", "models.exact -> decision_rules.beta"),
        ("models/exact.py", "import adaptive.helpers\n", "models.exact -> adaptive"),
        # transitively, through another project module (and through a package's __init__)
        (
            "adaptive/helpers.py",
            "from models.exact import f\n",
            "the memo never refits: adaptive.report -> adaptive.report.render -> adaptive.helpers -> models",
        ),
        ("adaptive/helpers.py", "import pymc\n", "adaptive.report.render -> adaptive.helpers -> pymc"),
        ("adaptive/helpers.py", "from adaptive.cli import main\n", "adaptive.helpers -> adaptive.cli"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(tmp_path, rel, text, message):
    _write(tmp_path, BASE)
    (tmp_path / rel).write_text((tmp_path / rel).read_text() + text)
    found = violations(module_imports(tmp_path))
    assert any(message in v for v in found), found


def test_type_checking_imports_do_not_count(tmp_path):
    _write(tmp_path, BASE)
    _write(
        tmp_path,
        {"decision_rules/beta.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pymc\n"},
    )
    assert violations(module_imports(tmp_path)) == []
