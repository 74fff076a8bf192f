"""Losses: named terms, their weighting into the total, and that training lowers them."""

import torch
import torch.nn.functional as F

from kgclip_core.model.losses import compute_losses, soft_cross_entropy
from test_model_kgclip import class_inputs, images, tiny_model


def test_terms_follow_the_switches_and_sum_to_total():
    model = tiny_model(su_loss_weight=0.5, triplet_loss_weight=0.3, label_smoothing=0.2)
    classes = model.encode_classes(class_inputs())
    labels = torch.tensor([1, 0])
    out = model(images(2, 3), classes)
    losses = compute_losses(model, out, classes, labels)
    triplet = ["triplet_video_action", "triplet_video_movement", "triplet_edges"]
    assert set(losses) == {"classification", "su_alignment", "total", *triplet}
    assert all(torch.isfinite(v) for v in losses.values())
    torch.testing.assert_close(losses["classification"], F.cross_entropy(out.logits, labels, label_smoothing=0.2))
    expected = losses["classification"] + 0.3 * sum(losses[k] for k in triplet) + 0.5 * losses["su_alignment"]
    torch.testing.assert_close(losses["total"], expected)

    plain = tiny_model(use_triplet=False, use_su=False)
    plain_classes = plain.encode_classes(class_inputs())
    losses = compute_losses(plain, plain(images(2, 3), plain_classes), plain_classes, labels)
    assert set(losses) == {"classification", "total"}


def test_soft_cross_entropy_against_a_loop():
    logits = torch.randn(3, 4)
    positives = torch.tensor([[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0]], dtype=torch.bool)
    rows = []
    for i in (0, 2):
        idx = positives[i].nonzero().flatten()
        rows.append(-F.log_softmax(logits[i], 0)[idx].mean())
    torch.testing.assert_close(soft_cross_entropy(logits, positives), torch.stack(rows).mean())
    assert soft_cross_entropy(logits, torch.zeros(3, 4, dtype=torch.bool)) == 0


def test_a_few_steps_lower_the_loss():
    model = tiny_model(seed=3, su_loss_weight=0.5).train()
    classes = model.encode_classes(class_inputs())
    x, labels = images(3, 2, seed=5), torch.tensor([0, 1, 2])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    first = None
    for _ in range(8):
        opt.zero_grad()
        losses = compute_losses(model, model(x, classes), classes, labels)
        losses["total"].backward()
        opt.step()
        first = losses["total"].item() if first is None else first
    final = compute_losses(model, model(x, classes), classes, labels)["total"].item()
    assert final < 0.8 * first
