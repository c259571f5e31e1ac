"""Data flows one way: a lower stage never imports a higher one (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "mouse_facial_expressions"
#: Level of each top-level module or subpackage; an import must go to a strictly lower level.
LEVELS = {
    "settings": -1,  # the configuration models: config (0) reads them
    "__version__": 0, "compat": 0, "_logs": 0, "config": 0, "provenance": 0, "bootstrap": 0, "__init__": 0.5, "project": 0.5,
    "io": 1, "preprocess": 2, "data": 3, "models": 4, "training": 5,
    "inference": 6, "evaluation": 6,  # siblings: scoring models vs. metrics on prediction tables
    "report": 7, "synth": 7, "pipeline": 8, "cli": 9, "__main__": 10,
}
#: The seed's module entry points (python -m ...models.train_task1_<model>_model) are CLI shims.
ENTRY_POINTS = {"train_task1_advanced_model.py", "train_task1_baseline_model.py", "train_task1_resup_model.py"}


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mouse_facial_expressions"):
            parts = node.module.split(".")
            out.update([parts[1]] if len(parts) > 1 else [a.name for a in node.names])
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith("mouse_facial_expressions."))
    return out


def test_every_module_has_a_level():
    names = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in PACKAGE.rglob("*.py")}
    assert names <= set(LEVELS), sorted(names - set(LEVELS))


def test_no_stage_imports_a_higher_one_or_its_sibling():
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in ENTRY_POINTS:
            continue
        here = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for dep in _imports(path) - {here}:
            if LEVELS.get(dep, 0) >= LEVELS[here]:
                bad.append(f"{path.relative_to(PACKAGE)} imports {dep}")
    assert not bad, "\n".join(bad)
