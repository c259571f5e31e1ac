"""Checkpoints written by the pinned commit's code still load and score the same with today's code.

The model code is being redesigned; runs trained before it must keep working. The fixture
extracts the pinned commit's package (``git archive``, no change to the repository) and runs
``tests/old_format.py`` with it: one checkpoint per kind of model the old ``mfe train`` writes
(plain, plain without a projection layer, baseline, resup, baseline-relative, AU heads,
attention-MIL, fusion late / stacked / mid / without the face), in Lightning's
``save_weights_only`` format, and the old ``FoldEnsemble``'s scores of fixed inputs. Each test
loads one checkpoint with the working tree's
:func:`~mouse_facial_expressions.models.registry.load_trained_model` and scores the same inputs
with :func:`_score_new`; every score must match to :data:`TOL`.

When the scoring API changes, :func:`_score_new` is the one place to change: it must return
the same keys as ``old_format.score_old`` (``p1``; ``au``; ``refs``; ``p1_only_<modality>``;
``bag_p1``, ``bag_attention``).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from old_format import LAYOUTS

#: The commit whose checkpoints must keep loading (its code writes them and scores them).
PINNED_COMMIT = "d1e10e8bdc4b51b5ae170548b924f9665b7334de"
#: Largest |old - new| difference allowed in any score.
TOL = 1e-5
REPO = Path(__file__).resolve().parents[1]


def _score_new(model: torch.nn.Module, hparams: dict, inputs: dict) -> dict:
    """Today's scores of ``inputs`` (the ``input_*`` arrays of a layout, prefix removed) with a
    checkpoint's ``(model, hparams)``, keyed as ``old_format.score_old`` keys the old ones."""
    from mouse_facial_expressions.inference.ensemble import FoldEnsemble

    ens = FoldEnsemble([model], [hparams], ["fold0"])
    clips = torch.from_numpy(inputs["clips"])
    aux = torch.from_numpy(inputs["aux"]) if "aux" in inputs else None
    out = {}
    if ens.relative:  # each animal against the mean embedding of its baseline clips
        ens.set_context([{"clip": torch.from_numpy(inputs["base_clips"]), "animal": [str(a) for a in inputs["base_animal"]]}])
        refs = model.parts["relative"].references
        out["refs"] = torch.stack([refs[str(a)] for a in inputs["animal"]])[None].numpy()
        out["p1"] = ens.predict(clips, animals=[str(a) for a in inputs["animal"]])
        return out
    p1, au = ens.predict_au(clips, aux=aux)
    out["p1"] = p1
    if au is not None:
        out["au"] = au
    if "attention" in model.parts:  # attention pooling: the clips as one bag
        with torch.no_grad():
            s = model.run({"clip": clips[None]})
        out["bag_p1"] = torch.softmax(s.logits, -1)[:, 1].numpy()
        out["bag_attention"] = s.outputs["attention"].numpy()
    if aux is not None:
        for m in ens.modalities:
            ens.use([m])
            out[f"p1_only_{m}"] = ens.predict(clips, aux=aux)
        ens.use(None)
    return out


def _git(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, **kw)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Score on one CPU thread (restored afterwards): tiny batches gain nothing from more, and on a
    busy machine the threads' waits made this module ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def old_runs(tmp_path_factory) -> Path:
    """The folder ``old_format.py`` wrote with the pinned commit's package (checkpoints, scores, index.json)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed: cannot extract the pinned commit's code")
    if _git("cat-file", "-e", f"{PINNED_COMMIT}^{{commit}}").returncode != 0:
        pytest.skip(f"commit {PINNED_COMMIT[:7]} is not in this repository (a shallow clone?): "
                    "fetch it (git fetch --unshallow) to test old checkpoints")
    archive = _git("archive", "--format=tar", PINNED_COMMIT, "src")
    assert archive.returncode == 0, f"git archive {PINNED_COMMIT[:7]} src failed: {archive.stderr.decode()}"
    old = tmp_path_factory.mktemp("pinned")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(old, filter="data")
    out = tmp_path_factory.mktemp("old_runs")
    env = {**os.environ, "PYTHONPATH": str(old / "src")}
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("old_format.py")), str(out)], env=env,
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"tests/old_format.py failed with the pinned commit's code ({PINNED_COMMIT[:7]}):\n"
                    f"{proc.stdout[-2000:]}\n{proc.stderr[-6000:]}", pytrace=False)
    return out


@pytest.fixture(scope="module")
def index(old_runs: Path) -> dict:
    return json.loads((old_runs / "index.json").read_text())


@pytest.fixture(scope="module")
def load_old(old_runs: Path):
    """``layout -> (model, hparams)`` loaded from its old checkpoint by today's
    :func:`~mouse_facial_expressions.models.registry.load_trained_model` (once per layout)."""
    from mouse_facial_expressions.models.registry import load_trained_model

    loaded: dict[str, tuple[torch.nn.Module, dict]] = {}

    def load(layout: str) -> tuple[torch.nn.Module, dict]:
        if layout not in loaded:
            loaded[layout] = load_trained_model(old_runs / f"{layout}.ckpt")
        return loaded[layout]

    return load


def test_every_layout_written(index):
    """The old script wrote every layout (a layout it skipped would otherwise go untested)."""
    assert sorted(index["layouts"]) == sorted(LAYOUTS)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_old_checkpoint_scores_the_same(old_runs: Path, load_old, layout: str):
    model, hparams = load_old(layout)
    saved = np.load(old_runs / f"{layout}.npz")
    inputs = {k[len("input_"):]: saved[k] for k in saved.files if k.startswith("input_")}
    expected = {k[len("expected_"):]: saved[k] for k in saved.files if k.startswith("expected_")}
    with torch.no_grad():
        got = _score_new(model, hparams, inputs)
    assert sorted(got) == sorted(expected), f"{layout}: scores {sorted(got)}, the old code gave {sorted(expected)}"
    for key, want in expected.items():
        have = np.asarray(got[key])
        assert have.shape == want.shape, f"{layout} {key}: shape {have.shape}, the old code gave {want.shape}"
        diff = float(np.max(np.abs(have - want)))
        assert diff <= TOL, f"{layout} {key}: max |new - old| = {diff:.3g} > {TOL}\nnew {have.ravel()}\nold {want.ravel()}"


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_old_hparams_data_round_trip(index: dict, load_old, layout: str):
    """The loaded ``data`` is the old one: what prediction and evaluation read (frames, stride,
    image size, normalisation, channels, task, fold, animals, domain, baseline recording)."""
    _, hparams = load_old(layout)
    loaded = json.loads(json.dumps(hparams["data"]))  # as index.json stores it (tuples become lists)
    assert loaded == index["layouts"][layout]["hyper_parameters"]["data"]
