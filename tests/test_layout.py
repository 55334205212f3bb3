"""Both packages are houses in wings whose imports point down only, read from the source with ``ast``
(no imports run, so this holds without the train extra too).

- ``trainer_jax``: data -> models -> evals -> train; above them only ``commands.py`` (the CLI commands).
- ``predictor``: data -> models -> evals -> jobs; at the top level only ``errors.py`` (the exception
  hierarchy every wing raises), ``api.py`` (the entry points over the jobs) and ``__init__.py``.

A lazy import inside a function is an arrow too: no module may import one of a higher wing, and the
predictor's modules import each other without a cycle.
"""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HOUSES = {
    "trainer_jax": (("data", "models", "evals", "train"), {"__init__.py", "commands.py"}),
    "predictor": (("data", "models", "evals", "jobs"), {"__init__.py", "errors.py", "api.py"}),
}


def _imports(path: Path) -> list[str]:
    """Every module name ``path`` imports, anywhere in the file (``from a import b`` gives a and a.b)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    return names


def _imported_wings(path: Path, package: str, order: tuple[str, ...]) -> set[str]:
    return {parts[1] for parts in (n.split(".") for n in _imports(path))
            if parts[0] == package and len(parts) > 1 and parts[1] in order}


@pytest.mark.parametrize("package", sorted(HOUSES))
def test_every_module_lives_in_a_wing(package):
    order, loose_ok = HOUSES[package]
    root = REPO / package
    loose = sorted(p.name for p in root.glob("*.py") if p.name not in loose_ok)
    assert loose == [], f"{package}: modules outside the wings: {loose}"
    assert {p.name for p in root.iterdir() if p.is_dir() and (p / "__init__.py").exists()} == set(order)


@pytest.mark.parametrize("package", sorted(HOUSES))
def test_wings_import_only_downwards(package):
    order, _ = HOUSES[package]
    root = REPO / package
    for rank, wing in enumerate(order):
        allowed = set(order[: rank + 1])
        for path in sorted((root / wing).rglob("*.py")):
            used = _imported_wings(path, package, order)
            assert used <= allowed, f"{path.relative_to(REPO)} imports wing(s) {sorted(used - allowed)}"


def test_no_wing_imports_the_top():
    for package, top in (("trainer_jax", ("trainer_jax.commands",)), ("predictor", ("predictor.api",))):
        for path in sorted((REPO / package).rglob("*.py")):
            if path.parent != REPO / package:
                assert not any(n.startswith(top) for n in _imports(path)), path


def test_predictor_modules_import_each_other_without_a_cycle():
    root = REPO / "predictor"
    modules = {".".join(p.relative_to(REPO).with_suffix("").parts): p for p in root.rglob("*.py")}
    modules = {m.removesuffix(".__init__"): p for m, p in modules.items()}
    graph = {m: {n for n in _imports(p) if n in modules and n != m} for m, p in modules.items()}
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(m, path):
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(n):] + [n]))
            if n not in state:
                visit(n, path + [n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def test_predictor_never_imports_the_trainer():
    for path in sorted((REPO / "predictor").rglob("*.py")):
        assert not any(n.split(".")[0] == "trainer_jax" for n in _imports(path)), path
