"""trainer_jax's wings depend downwards only: train -> evals -> models -> data (no arrow back up).
Above them sits only ``commands.py``, the trainer's CLI commands, which may use every wing.

Read from the source with ``ast`` (no imports run), so it holds without the train extra too.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "trainer_jax"
ORDER = ("data", "models", "evals", "train")  # each wing may import only the wings before it


def _imported_wings(path: Path) -> set[str]:
    wings = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "trainer_jax" and len(parts) > 1 and parts[1] in ORDER:
                wings.add(parts[1])
    return wings


def test_every_module_lives_in_a_wing():
    loose = sorted(p.name for p in ROOT.glob("*.py") if p.name not in ("__init__.py", "commands.py"))
    assert loose == [], f"modules outside the wings: {loose}"


def test_wings_import_only_downwards():
    for rank, wing in enumerate(ORDER):
        allowed = set(ORDER[: rank + 1])
        for path in sorted((ROOT / wing).rglob("*.py")):
            used = _imported_wings(path)
            assert used <= allowed, f"{path.relative_to(ROOT.parent)} imports wing(s) {sorted(used - allowed)}"


def test_no_wing_imports_the_commands():
    for path in sorted(ROOT.rglob("*.py")):
        if path.parent != ROOT:
            assert "trainer_jax.commands" not in path.read_text(encoding="utf-8"), path
