"""Shared fixtures: the real clips from ../shared, a tiny CLIP, the shipped models (each loaded once
per test run), and an isolated cache."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CLIPS = SHARED / "clips"
REFERENCE_LABELS = SHARED / "reference" / "labels"
CHECKPOINTS = REPO / "checkpoints"


def manifest_rows() -> list[dict]:
    """Rows of ../shared/clips/manifest.csv with an absolute ``file`` path added."""
    with open(CLIPS / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["file"] = CLIPS / row["path"]
    return rows


@pytest.fixture(scope="session")
def shared_clips() -> list[dict]:
    """Every labelled clip of the shared test data (skips when ../shared is absent)."""
    if not (CLIPS / "manifest.csv").is_file():
        pytest.skip("../shared/clips is not beside the repository")
    return manifest_rows()


@pytest.fixture(scope="session")
def real_clip(shared_clips) -> Path:
    """One short real clip (UCF-101 'BaseballPitch')."""
    return next(r["file"] for r in shared_clips if r["label"] == "BaseballPitch")


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Text-embedding caches go to a temporary folder, never the user's home."""
    mp = pytest.MonkeyPatch()
    mp.setenv("KGCLIP_CACHE_DIR", str(tmp_path_factory.mktemp("kgclip-cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def tiny_backbone():
    """The tiny open_clip config on random weights, seeded so every run builds the same model."""
    import torch

    from kgclip_core.backbone import BackboneConfig, load_backbone

    torch.manual_seed(0)
    return load_backbone(BackboneConfig("kgclip-tiny", None, allow_random=True, device="cpu"))


@pytest.fixture(scope="session")
def make_full_predictor(tiny_backbone):
    """Build a seeded Predictor running every KG-CLIP head (MRA, SU, decoder, WTI, triplets) on the tiny CLIP."""
    import torch

    from kgclip_core.model.config import ModelConfig
    from kgclip_core.model.kgclip import KGClipModel
    from kgclip_core.predictor import Predictor, PredictorConfig

    def make(num_frames: int = 8) -> Predictor:
        torch.manual_seed(0)
        cfg = ModelConfig(backbone="kgclip-tiny", pretrained=None, decoder_heads=2, triplet_heads=2, num_regions=4)
        return Predictor(KGClipModel(cfg, tiny_backbone), PredictorConfig(backbone=tiny_backbone.cfg, num_frames=num_frames))

    return make


@pytest.fixture(scope="session")
def demo_predictor():
    """The shipped demo checkpoint (fine-tuned on the synthetic actions), loaded once per test run;
    tests read it and change nothing of it."""
    from kgclip_core.predictor import Predictor

    return Predictor.from_checkpoint(CHECKPOINTS / "synthetic", device="cpu")


@pytest.fixture(scope="session")
def foundation():
    """The shipped foundation run training-free on the synthetic labels, loaded once per test run;
    tests read it and change nothing of it."""
    from kgclip_core.synth.foundation import foundation_predictor

    return foundation_predictor(CHECKPOINTS / "foundation" / "open_clip_model.safetensors", device="cpu")
