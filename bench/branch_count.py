"""Count, per function, the branches on a feature mode (prints numbers; the yardstick of the core redesign).

A branch is an ``if`` statement, a conditional expression or a ``match`` whose test names a
feature mode: one of :data:`FEATURE_NAMES` as a variable, attribute, keyword or string
(``p.weak``, ``params.modalities is not None``, ``hp.get("au")``, ``"attention" == weak``).
The count of a function is its distinct feature modes branched on (``--count branches`` counts
the branch nodes instead). Nested functions count on their own.

The goal of the redesign: no function in ``training/``, ``data/``, ``models/``, ``evaluation/``
or ``inference/`` branches on more than 3 feature modes; a part's own module (``fusion.py``,
``au.py``, ``weak.py``, ``mil.py``, ``relative.py``, ``modalities.py``) may branch on its own.

Usage: python bench/branch_count.py [--top N] [--limit 3] [--count modes|branches]
Exit status 0 always: this measures, it does not judge (a test may import ``count_tree``).
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "mouse_facial_expressions"
#: Stages whose functions must stay under the limit.
STAGES = ("training", "data", "models", "evaluation", "inference")
#: A part's own module may branch on its own options.
PART_MODULES = {"fusion.py", "au.py", "weak.py", "mil.py", "relative.py", "modalities.py", "au_targets.py",
                "attention.py", "face.py", "class_head.py", "fusion_fit.py", "bags.py"}
#: Feature modes, by the names the code gives them -> the mode they belong to.
FEATURE_NAMES = {
    "weak": "weak", "weak_posterior": "weak", "weak_bag": "weak", "mil": "weak", "bags": "weak",
    "modalities": "fusion", "modality_list": "fusion", "fusion": "fusion", "aux": "fusion", "inputs": "fusion",
    "targets": "au", "au": "au", "au_targets": "au", "has_au": "au",
    "baseline_recording": "relative", "relative": "relative", "ref_clip": "relative",
    "model_name": "model", "resup": "model",
    "recalibrate": "recalibrate", "adabn": "recalibrate",
}


def _modes(test: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(test):
        name = (node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute)
                else node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None)
        if name in FEATURE_NAMES:
            found.add(FEATURE_NAMES[name])
    return found


def _function_counts(fn: ast.AST) -> tuple[set[str], int]:
    """Modes branched on and branch nodes inside ``fn``, not descending into nested functions."""
    modes, n = set(), 0
    stack = list(ast.iter_child_nodes(fn))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        test = node.test if isinstance(node, (ast.If, ast.IfExp)) else node.subject if isinstance(node, ast.Match) else None
        if test is not None and (m := _modes(test)):
            modes |= m
            n += 1
        stack.extend(ast.iter_child_nodes(node))
    return modes, n


def count_tree(package: Path = PACKAGE) -> list[dict]:
    """One row per function of ``package``: ``file, function, line, modes (sorted), branches, part``."""
    rows = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                modes, n = _function_counts(node)
                if n:
                    rows.append({"file": rel.as_posix(), "function": node.name, "line": node.lineno,
                                 "modes": sorted(modes), "branches": n, "part": path.name in PART_MODULES})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--top", type=int, default=15, help="rows to print, most branched first")
    ap.add_argument("--limit", type=int, default=3, help="feature modes a stage function may branch on")
    ap.add_argument("--count", choices=("modes", "branches"), default="modes")
    args = ap.parse_args()
    rows = count_tree()
    key = (lambda r: len(r["modes"])) if args.count == "modes" else (lambda r: r["branches"])
    staged = [r for r in rows if r["file"].split("/")[0] in STAGES and not r["part"]]
    over = [r for r in staged if len(r["modes"]) > args.limit]
    print(f"functions branching on a feature mode: {len(rows)} ({len(staged)} in {', '.join(STAGES)} outside part modules)")
    print(f"over the limit of {args.limit} modes: {len(over)}")
    print(f"{'modes':>5} {'branches':>8}  function")
    for r in sorted(staged, key=key, reverse=True)[: args.top]:
        print(f"{len(r['modes']):>5} {r['branches']:>8}  {r['file']}:{r['line']} {r['function']} ({', '.join(r['modes'])})")


if __name__ == "__main__":
    main()
