"""The package's layout rules (issue 12), checked on the source itself:

- imports go one way: no cycle between modules, counting imports inside functions;
- a private module (`_x.py`) or private name (`_x`) is imported only from inside its own package;
- `import nas` is cheap (no TensorFlow) and offers the API a Python user wants first;
- no public name of `nas` shadows one of its modules; no module over 450 lines.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "nas"
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (a package is its __init__)."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = ["nas", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _package_of(module: str) -> str:
    """The package a module belongs to: itself for a package's __init__, else its parent."""
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _imports(module: str) -> list[tuple[str, str | None, int]]:
    """(target module, imported name or None, line) for every import statement in `module`,
    at any depth (function-level imports included)."""
    tree = ast.parse(MODULES[module].read_text())
    package = _package_of(module)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names if alias.name.split(".")[0] == "nas"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "nas":
                continue
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                if submodule in MODULES:  # `from . import interrupt`: the module itself
                    found.append((submodule, None, node.lineno))
                else:
                    found.append((target, alias.name, node.lineno))
    if module == "nas":  # the lazy exports: attribute access imports these modules
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_EXPORTS" for t in node.targets):
                for value in ast.literal_eval(node.value).values():
                    found.append((f"nas.{value[0]}", value[1], node.lineno))
    return found


def _graph() -> dict[str, set[str]]:
    return {module: {target for target, _, _ in _imports(module) if target in MODULES and target != module}
            for module in MODULES}


def test_every_import_resolves_to_a_module_of_the_package():
    unknown = [(m, t, line) for m in MODULES for t, _, line in _imports(m) if t not in MODULES]
    assert not unknown, unknown


def test_imports_go_one_way():
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


#: The README's map, bottom up: a module imports only from its own layer or those before it.
LAYERS = [("nas.errors", "nas.units", "nas.interrupt", "nas.files", "nas.catalog", "nas.logs", "nas.backend"), ("nas.spec",),
          ("nas.data",), ("nas.firmware",), ("nas.measure",), ("nas.candidate",), ("nas.latency",), ("nas.calibration",),
          ("nas.search",), ("nas.outputs",), ("nas.workflow",), ("nas",), ("nas.cli",)]


def _layer(module: str) -> int:
    top = ".".join(module.split(".")[:2])
    return next(i for i, layer in enumerate(LAYERS) if top in layer or module in layer)


def test_each_layer_imports_only_the_layers_below():
    upward = [f"{m} -> {t}" for m, targets in _graph().items() for t in targets if _layer(t) > _layer(m)]
    assert not upward, upward


def test_nothing_private_crosses_a_package():
    crossings = []
    for module in MODULES:
        mine = _package_of(module)
        for target, name, line in _imports(module):
            if target not in MODULES:
                continue
            owner = target.rpartition(".")[0] if _is_private(target.rpartition(".")[2]) else None
            if owner is not None and owner != mine:
                crossings.append(f"{module}:{line} imports private module {target}")
            if name and _is_private(name) and _package_of(target) != mine:
                crossings.append(f"{module}:{line} imports private name {name} from {target}")
    assert not crossings, crossings


def test_the_checker_sees_what_it_must():
    # The rules above would pass vacuously if imports were not found: check a few known edges.
    graph = _graph()
    assert "nas.search._driver" in graph["nas.search"]
    assert "nas.latency" in graph["nas.search._screen"]  # a function-level import
    assert "nas.interrupt" in graph["nas.candidate._train"]  # `from .. import interrupt`
    assert "nas.workflow" in graph["nas"]  # the lazy export of run_search


def test_import_nas_is_cheap_and_offers_the_api():
    code = ("import sys, nas\n"
            "print(nas.run_search, nas.load_study, nas.load_device, nas.export_model, nas.evaluate, nas.ArchSpec,\n"
            "      nas.SearchSpace, nas.NasError, nas.ConfigError)\n"
            "print('tensorflow' in sys.modules, 'tf_keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False False"


def test_no_public_name_shadows_a_module():
    import nas

    submodules = {name.rpartition(".")[2] for name in MODULES if name.count(".") == 1}
    assert not set(nas.__all__) & submodules


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_over_450_lines(module):
    lines = MODULES[module].read_text().count("\n")
    assert lines <= MAX_LINES, f"{MODULES[module]} has {lines} lines"


@pytest.mark.parametrize("package", sorted(m for m in MODULES if MODULES[m].name == "__init__.py" and m != "nas"))
def test_each_subpackage_exports_what_it_says(package):
    import importlib

    module = importlib.import_module(package)
    missing = [name for name in getattr(module, "__all__", []) if not hasattr(module, name)]
    assert not missing, missing
