"""The package's layout: imports run one way, no cycles, a small top level, each method
spelled in its own module, each default stated once, no private names across packages."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import scflow

ROOT = Path(scflow.__file__).parent

#: import direction (DESIGN.md): face -> features -> methods -> training -> engine -> helpers;
#: a module may import its own layer and those below, never above
LAYERS = {
    "helpers": ("_checks", "_errors", "_io", "_lazy", "_plain", "_progress", "_settings",
                "_threads"),
    "engine": ("paths", "couplings", "references", "flow", "metrics"),
    "training": ("training", "growth"),
    "methods": ("methods",),
    "features": ("fate", "protocols"),
    "face": ("tl", "pl", "_adata", "datasets", "benchmark", "cli", "__init__", "__main__"),
}
ORDER = list(LAYERS)


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out[".".join(["scflow", *parts]) if parts != ["__init__"] else "scflow"] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path, *, top_level_only: bool) -> set[str]:
    """The scflow modules ``name`` imports (``from x import y`` counts ``x.y`` when it is a
    module), resolved from relative imports."""
    tree = ast.parse(path.read_text())
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                root = base[: len(base) - node.level + 1]
                mod = ".".join(root + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith("scflow"):
                continue
            found.add(mod)
            for alias in node.names:
                if f"{mod}.{alias.name}" in MODULES:
                    found.add(f"{mod}.{alias.name}")
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("scflow")}
    # importing a.b.c runs the __init__ of a.b first (but a package being initialised,
    # the module's own parents, is not imported again)
    out = set()
    for mod in found:
        parts = mod.split(".")
        out |= {".".join(parts[:i]) for i in range(2, len(parts) + 1)}
    own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    return {m for m in out if m in MODULES and m != name and m not in own}


def _layer(module: str) -> int:
    top = module.split(".")[1] if module != "scflow" else "__init__"
    for i, names in enumerate(LAYERS.values()):
        if top in names:
            return i
    raise AssertionError(f"module {module} is in no layer of tests/test_layout.py")


def test_at_most_twelve_modules_at_the_top_level():
    top = sorted(p.name for p in ROOT.glob("*.py"))
    assert len(top) <= 12, top
    assert not {"benchmark.py", "rollout.py", "published.py", "error_budget.py"} & set(top)


def test_imports_run_one_way():
    """Every import, at the top of a module or inside a function, goes to the module's own
    layer or a lower one (face -> features -> methods -> training -> engine -> helpers)."""
    bad = []
    for name, path in MODULES.items():
        for dep in _imports(name, path, top_level_only=False):
            if _layer(dep) > _layer(name) and not dep == "scflow":
                bad.append(f"{name} ({ORDER[_layer(name)]}) imports {dep} "
                           f"({ORDER[_layer(dep)]})")
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    graph = {n: _imports(n, p, top_level_only=True) for n, p in MODULES.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (cycle := visit(m)):
                return cycle
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (cycle := visit(n)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


def _strings(path: Path) -> list[str]:
    """The string constants of a module's code (docstrings and ``__all__``, which names
    Python objects, left out)."""
    tree = ast.parse(path.read_text())
    docs = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__"
                                                for t in node.targets):
            docs |= {id(c) for c in ast.walk(node.value)}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value,
                                                                      ast.Constant):
                docs.add(id(body[0].value))
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
            and isinstance(n.value, str) and id(n) not in docs]


def test_every_method_name_is_spelled_in_at_most_three_files():
    """A method's name as a string (``"sbcfm"``, or ``method='sbcfm'`` in a message) is
    written in its own module and at most two other files; everything else asks the
    registry (names, capabilities, default lists)."""
    import re

    strings = {name: _strings(path) for name, path in MODULES.items()}
    too_many = {}
    for method in scflow.methods.names():
        pattern = re.compile(rf"(^|['\"=]){re.escape(method)}($|['\"])")
        files = sorted(n for n, s in strings.items() if any(pattern.search(v) for v in s))
        if len(files) > 3:
            too_many[method] = files
    assert not too_many


#: parameters that are training options wherever a function takes several of them
_OPTIONS = set(scflow.TrainConfig.names())


def test_training_signatures_restate_no_other_default():
    """Every function taking the training options (three or more of them) defaults each to
    TrainConfig's value (or to ``None``, "not given", which states none): a default is
    stated once."""
    import importlib

    default = scflow.TrainConfig()
    checked, bad = 0, []
    for name in MODULES:
        if name == "scflow.__main__":  # runs the command line
            continue
        module = importlib.import_module(name)
        for fname, fn in vars(module).items():
            if not inspect.isfunction(fn) or fn.__module__ != name:
                continue
            params = inspect.signature(fn).parameters
            shared = _OPTIONS & set(params)
            if len(shared) < 3:
                continue
            checked += 1
            for p in shared:
                d = params[p].default
                if d is inspect.Parameter.empty or d is None:  # None: not given, no default
                    continue
                want = getattr(default, p)
                if (tuple(d) if isinstance(d, list) else d) != want:
                    bad.append(f"{name}.{fname}({p}={d!r}), TrainConfig: {want!r}")
    assert checked >= 3 and not bad, bad


def test_no_private_name_is_imported_from_another_subpackage():
    """``from ..x._y import z`` or ``from ..x import _z`` across subpackages: a seam is
    missing (shared top-level helpers, ``scflow._checks`` and the like, are meant to be
    shared)."""
    bad = []
    for name, path in MODULES.items():
        own = name.split(".")[1] if name.count(".") else ""
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
            mod = (".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module
                                                                    else []))
                   if node.level else (node.module or ""))
            parts = mod.split(".")
            if not mod.startswith("scflow") or len(parts) < 2 or parts[1] == own:
                continue
            private_module = any(p.startswith("_") for p in parts[2:])
            private_name = [a.name for a in node.names if a.name.startswith("_")]
            if len(parts) > 1 and parts[1].startswith("_") and len(parts) == 2:
                continue  # a top-level shared helper
            if private_module or private_name:
                bad.append(f"{name}: from {mod} import "
                           f"{', '.join(a.name for a in node.names)}")
    assert not bad, "\n".join(bad)
