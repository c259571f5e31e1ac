"""Checkpoint selection rules on hand-made validation histories."""

from __future__ import annotations

import pytest

from mouse_facial_expressions.training.selection import SELECT_RULES, select_epoch, select_score


def hist(*rows):
    """epoch -> {"val_acc", "val_loss"} from (acc, loss) pairs."""
    return {e: {"val_acc": a, "val_loss": loss} for e, (a, loss) in enumerate(rows)}


# The fold-0 history of issue 10: accuracy jumps on 18 windows while the loss falls steadily.
NOISY = hist((0.944, 0.45), (0.333, 0.40), (0.833, 0.31))


def test_val_acc_keeps_the_most_accurate_epoch():
    assert select_epoch(NOISY, "val_acc") == 0


def test_val_acc_breaks_ties_by_the_lower_loss():
    assert select_epoch(hist((0.5, 0.42), (0.3, 0.38), (0.5, 0.39)), "val_acc") == 2


def test_val_loss_keeps_the_lowest_loss_whatever_the_accuracy():
    assert select_epoch(NOISY, "val_loss") == 2
    assert select_epoch(hist((0.9, 0.2), (1.0, 0.3)), "val_loss") == 0


def test_last_keeps_the_last_epoch():
    assert select_epoch(NOISY, "last") == 2
    assert select_epoch(hist((1.0, 0.1), (0.5, 0.9)), "last") == 1


def test_equal_scores_keep_the_first_epoch_as_the_checkpoint_callback_does():
    assert select_epoch(hist((0.5, 0.4), (0.5, 0.4)), "val_acc") == 0


def test_epochs_without_validation_are_not_candidates():
    history = {0: {"train_acc": 0.9}, 1: {"val_acc": 0.6, "val_loss": 0.5}}
    assert select_epoch(history, "val_acc") == 1
    with pytest.raises(ValueError, match="no validated epoch"):
        select_epoch({0: {"train_acc": 0.9}}, "val_acc")


def test_unknown_rule_names_the_rules():
    with pytest.raises(ValueError, match="val_loss"):
        select_score("best", 0, 0.5, 0.5)


def test_every_rule_has_a_description():
    from mouse_facial_expressions.training.selection import SELECT_DESCRIPTIONS

    assert set(SELECT_DESCRIPTIONS) == set(SELECT_RULES) and all(SELECT_DESCRIPTIONS.values())
