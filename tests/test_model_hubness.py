"""Hubness correction of semantic-unit selection: the token means, their running update and
calibration, the bias they make, and the model and checkpoint that carry them."""

import pytest
import torch
import torch.nn.functional as F

from kgclip_core.errors import ConfigError
from kgclip_core.model import ModelConfig, checkpoint
from kgclip_core.model.hubness import MOMENTUM, HubCorrection, token_means
from tests.test_model_kgclip import class_inputs, images, tiny_model


def test_token_means_average_normalised_tokens_per_kind():
    visual = torch.zeros(2, 3, 3, 4)
    visual[:, :, 0, 0] = 5.0  # every CLS token points along axis 0, whatever its length
    visual[0, :, 1:, 1] = 2.0  # regions: half along axis 1, half along axis 2
    visual[1, :, 1:, 2] = 0.5
    means = token_means(visual)
    torch.testing.assert_close(means, torch.tensor([[1.0, 0, 0, 0], [0, 0.5, 0.5, 0]]))
    torch.testing.assert_close(token_means(visual[:, :, :1])[1], torch.zeros(4))  # no regions


def test_calibrate_is_the_exact_mean_and_update_moves_toward_the_batch():
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(b, 2, 3, 8, generator=g) for b in (3, 1, 4)]
    hub = HubCorrection(8, beta=0.5)
    assert hub.calibrate(batches) == 8
    torch.testing.assert_close(hub.means, token_means(torch.cat(batches)))
    before = hub.means.clone()
    hub.update(batches[0])
    torch.testing.assert_close(hub.means, before + MOMENTUM * (token_means(batches[0]) - before))


def test_bias_is_beta_times_the_mean_cosine_of_each_token_kind():
    hub = HubCorrection(4, beta=0.5)
    hub.means.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]))
    units = torch.tensor([[2.0, 0, 0, 0], [0, 3.0, 0, 0], [1.0, 1.0, 0, 0], [-1.0, 0, 0, 0]])
    bias = hub.bias(units, num_tokens=3)
    s = 0.5 / 2 ** 0.5
    # the last unit, which frames usually match below 0 (an anti-hub), is not raised
    torch.testing.assert_close(bias, torch.tensor([[0.5, 0, s, 0], [0, 0.5, s, 0], [0, 0.5, s, 0]]))


def test_the_model_learns_the_means_while_training_and_keeps_them_in_its_checkpoint(tmp_path):
    model = tiny_model(su_hub_correction=0.5, num_regions=2)
    classes = model.encode_classes(class_inputs())
    video = model.encode_video(images(2, 3))
    model.eval()
    model.score(video, classes)
    assert torch.count_nonzero(model.hub.means) == 0  # evaluation leaves them alone
    model.train()
    model.score(video, classes)
    expected = MOMENTUM * token_means(model.unit_tokens(video))
    torch.testing.assert_close(model.hub.means, expected)
    model.eval()
    checkpoint.save(model, tmp_path / "ckpt")
    loaded = checkpoint.load(tmp_path / "ckpt").model
    torch.testing.assert_close(loaded.hub.means, model.hub.means)
    with torch.no_grad():
        a, b = model.score(video, classes), loaded.score(video, classes)
    assert torch.equal(a.su.indices, b.su.indices)


def test_a_unit_every_clip_shows_is_not_selected_once_corrected():
    torch.manual_seed(0)
    model = tiny_model(su_hub_correction=1.0, su_top_k=2).eval()
    classes = model.encode_classes(class_inputs())
    video = model.encode_video(images(1, 3))
    units = F.normalize(classes.unit_emb, dim=-1)
    # Make the clip's most similar unit the one every clip shows: the correction drops it.
    with torch.no_grad():
        plain = model.score(video, classes)
        hub_unit = int(plain.su.indices[0, 0])
        model.hub.means.copy_(units[hub_unit].expand(2, -1))
        corrected = model.score(video, classes)
    assert hub_unit not in corrected.su.indices[0].tolist()
    torch.testing.assert_close(corrected.su.video_scores, plain.su.video_scores)  # scores stay raw


def test_training_free_scoring_refuses_the_correction():
    with pytest.raises(ConfigError, match="su_hub_correction"):
        ModelConfig.training_free_preset(su_hub_correction=0.5)
