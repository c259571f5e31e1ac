"""Checkpoint selection rules: which epoch of a fold is kept, from validation animals only.

Each rule turns an epoch's validation totals into ``val_select`` (higher is better);
``mfe train`` keeps the first epoch with the highest value (Lightning's ``ModelCheckpoint``
with ``mode="max"``). The test animals never enter: they are scored once, after selection.
``docs/RECIPE.md`` compares the rules on the same training runs.
"""

from __future__ import annotations

#: Weight of the validation loss in ``val_acc - SELECT_LOSS_WEIGHT * val_loss`` (the ``val_acc``
#: rule): accuracy first; among epochs with equal accuracy (frequent with a few hundred
#: validation windows) the lower loss. Small enough that no loss difference can outweigh one
#: more correct window out of 1,000.
SELECT_LOSS_WEIGHT = 1e-4

#: The rules, and what each keeps (``fold.json``'s ``select_rule``).
SELECT_DESCRIPTIONS: dict[str, str] = {
    "val_acc": "epoch with the best accuracy on the validation animals' windows; ties to the lower validation loss",
    "val_loss": "epoch with the lowest validation loss (KL/cross-entropy) on the validation animals' windows",
    "last": "last epoch of the schedule (no selection; validation is still scored and recorded)",
}
SELECT_RULES = tuple(SELECT_DESCRIPTIONS)


def select_score(rule: str, epoch: int, val_acc: float, val_loss: float) -> float:
    """``val_select`` of one epoch under ``rule``; higher is better.

    - ``val_acc``: ``val_acc - SELECT_LOSS_WEIGHT * val_loss``.
    - ``val_loss``: ``-val_loss`` (smooth in the weights: one window flipping class does not
      move it, so small validation sets choose less erratically).
    - ``last``: the epoch number, so the last epoch always wins.
    """
    if rule == "val_acc":
        return val_acc - SELECT_LOSS_WEIGHT * val_loss
    if rule == "val_loss":
        return -val_loss
    if rule == "last":
        return float(epoch)
    raise ValueError(f"unknown selection rule {rule!r} (choose from {', '.join(SELECT_RULES)})")


def select_epoch(history: dict[int, dict[str, float]], rule: str) -> int:
    """The epoch ``rule`` keeps from ``history`` (epoch -> {"val_acc", "val_loss", ...}):
    the first epoch with the highest :func:`select_score`, as ``mfe train`` does."""
    epochs = sorted(e for e, h in history.items() if "val_acc" in h)
    if not epochs:
        raise ValueError("no validated epoch to select from")
    scores = [select_score(rule, e, history[e]["val_acc"], history[e]["val_loss"]) for e in epochs]
    return epochs[scores.index(max(scores))]
