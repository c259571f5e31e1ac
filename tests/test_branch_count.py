"""bench/branch_count.py: the yardstick of the core redesign counts feature-mode branches per function."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "branch_count.py"


def _tool():
    spec = importlib.util.spec_from_file_location("branch_count", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_it_counts_modes_per_function_and_leaves_nested_functions_to_themselves(tmp_path):
    pkg = tmp_path / "pkg" / "training"
    pkg.mkdir(parents=True)
    (pkg / "loop.py").write_text(
        "def train(p, hp):\n"
        "    if p.weak is not None:\n"
        "        pass\n"
        "    x = 1 if p.modalities else 0\n"
        "    if hp.get('au') and p.weak == 'em':\n"
        "        pass\n"
        "    if p.epochs > 3:\n"  # not a feature mode
        "        pass\n"
        "    def inner(q):\n"
        "        if q.baseline_recording:\n"
        "            pass\n"
        "    return x\n")
    rows = {r["function"]: r for r in _tool().count_tree(tmp_path / "pkg")}
    assert rows["train"]["modes"] == ["au", "fusion", "weak"] and rows["train"]["branches"] == 3
    assert rows["inner"]["modes"] == ["relative"] and rows["inner"]["branches"] == 1


def test_it_reads_the_package():
    rows = _tool().count_tree()
    assert any(r["file"].startswith("training/") for r in rows)


def test_no_stage_function_branches_on_more_than_three_feature_modes():
    """The core redesign's yardstick: training, data, models, evaluation and inference iterate over
    the model's parts; only a part's own module may branch on its own options."""
    tool = _tool()
    over = [f"{r['file']}:{r['line']} {r['function']} {r['modes']}" for r in tool.count_tree()
            if r["file"].split("/")[0] in tool.STAGES and not r["part"] and len(r["modes"]) > 3]
    assert not over, over
