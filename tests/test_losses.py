"""Losses: LDL (KL), cross-entropy, target smoothing, ReSup weight and loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mouse_facial_expressions.models.losses import cross_entropy, ldl_loss, resup_loss, resup_weight, smooth_targets


def test_kl_is_zero_for_identical_distributions():
    p = torch.tensor([[0.9, 0.1], [0.3, 0.7], [1.0, 0.0]])
    logits = torch.log(p.clamp_min(1e-30))
    assert ldl_loss(logits, p).item() < 1e-6


def test_kl_matches_the_definition():
    logits = torch.tensor([[2.0, -1.0]])
    t = torch.tensor([[0.25, 0.75]])
    q = torch.softmax(logits, -1)
    expected = (t * (t.log() - q.log())).sum()
    assert torch.isclose(ldl_loss(logits, t), expected)


def test_kl_is_positive_for_different_distributions():
    assert ldl_loss(torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 1.0]])).item() > 1.0


def test_smoothing_applies_to_one_hot_targets_only():
    soft = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.3, 0.7]])
    out = smooth_targets(soft, 0.1)
    assert torch.allclose(out, torch.tensor([[0.1, 0.9], [0.9, 0.1], [0.3, 0.7]]))


def test_cross_entropy_uses_class_weights_and_smoothing():
    logits, y, w = torch.randn(4, 2), torch.tensor([0, 1, 1, 0]), torch.tensor([1.0, 3.0])
    assert torch.isclose(cross_entropy(logits, y, w, 0.1), F.cross_entropy(logits, y, weight=w, label_smoothing=0.1))


def test_resup_weight_is_one_when_the_nets_agree():
    p = torch.tensor([[0.2, 0.8], [0.6, 0.4]])
    assert torch.allclose(resup_weight(p, p), torch.ones(2))


def test_resup_weight_falls_with_disagreement():
    w = resup_weight(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]))
    assert torch.isclose(w, torch.exp(torch.tensor([-2.0])))


def test_resup_loss_of_agreeing_nets_is_twice_the_ldl():
    logits = torch.tensor([[1.0, -1.0], [0.0, 2.0]])
    t = torch.tensor([[0.9, 0.1], [0.1, 0.9]])
    loss, w = resup_loss(logits, logits.clone(), t, torch.tensor([0, 1]))
    assert torch.allclose(w, torch.ones(2))
    assert torch.isclose(loss, 2 * ldl_loss(logits, t))
