"""Warm-up: label sets are embedded in the background, and the status line says how far."""

import threading

import pytest

from kgclip_core.errors import LabelError
from kgclip_core.model.config import ModelConfig
from kgclip_core.model.kgclip import KGClipModel
from kgclip_core.predictor import Predictor, PredictorConfig
from kgclip_core.text_cache import TextEmbeddingCache
from kgclip_core.warmup import Warmup


@pytest.fixture
def predictor(tiny_backbone):
    cfg = ModelConfig.training_free_preset(backbone="kgclip-tiny", pretrained=None)
    return Predictor(KGClipModel(cfg, tiny_backbone), PredictorConfig(backbone=tiny_backbone.cfg))


def test_warmup_embeds_in_the_background_and_reports_progress(predictor, monkeypatch):
    labels = predictor.resolve_labels("hmdb51")
    # Embedded for real, batch by batch: an earlier test may have cached this label set already.
    monkeypatch.setattr(predictor.backbone, "cache", TextEmbeddingCache(None))
    halfway, release = threading.Event(), threading.Event()
    embed = predictor.model.encode_classes

    def paused(inputs, progress=None):
        def report(done, total):
            progress(done, total)
            if not release.is_set() and done >= total // 2:
                halfway.set()
                release.wait(10)

        return embed(inputs, progress=report)

    monkeypatch.setattr(predictor.model, "encode_classes", paused)
    warmup = Warmup([(predictor, labels)]).start()
    assert halfway.wait(30)
    status = warmup.status()
    done, total = predictor.embedding_progress(labels)
    assert (warmup.jobs[0].done, warmup.jobs[0].total) == (done, total) and 0 < done < total
    assert not warmup.done and "Preparing label set `hmdb51`" in status and f"{done:,}/{total:,} texts" in status
    release.set()
    warmup.join(60)
    assert warmup.done and warmup.status().startswith("**Ready:**") and predictor.embedding_progress(labels) is None
    assert predictor.classes(labels, progress=lambda d, t: pytest.fail("embedded again")) is not None


def test_warmup_failure_is_reported_not_raised(predictor, monkeypatch):
    def refuse(inputs, progress=None):
        raise LabelError("no such labels")

    monkeypatch.setattr(predictor.model, "encode_classes", refuse)
    warmup = Warmup([(predictor, predictor.resolve_labels(["a", "b"]))]).start()
    warmup.join(30)
    assert warmup.done and "no such labels" in warmup.status()
