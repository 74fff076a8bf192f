"""Checkpoints: a directory with ``config.json``, ``model.safetensors`` and ``kg.json``.

``config.json`` holds the :class:`ModelConfig` (which rebuilds the model exactly), the
label set and, optionally, the heatmap method measured to point best with these weights
(``heatmap_method``, docs/EXPLAIN.md); ``model.safetensors`` every weight, backbone included; ``kg.json`` the knowledge
graph the model was trained with (node-link JSON). Loading parses JSON and safetensors only:
nothing is ever unpickled, so a checkpoint from anywhere cannot run code.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from kgclip_core.errors import ConfigError, WeightsError
from kgclip_core.model.config import ModelConfig
from kgclip_core.model.kgclip import KGClipModel, build_model
from kgclip_core.model.safetensors_header import read_header
from kgclip_core.skip_init import init_skipped

log = logging.getLogger(__name__)

FORMAT = "kgclip-checkpoint"
VERSION = 1
CONFIG_FILE, WEIGHTS_FILE, KG_FILE = "config.json", "model.safetensors", "kg.json"
# Limits on what a checkpoint from anywhere may hand the loader (docs/MODEL.md).
MAX_CONFIG_BYTES = 1 << 20
MAX_KG_BYTES = 64 << 20
MAX_LABELS, MAX_LABEL_LENGTH = 10_000, 200


@dataclass
class Checkpoint:
    """What :func:`load` returns."""

    model: KGClipModel
    config: ModelConfig
    kg: dict
    labels: list[str] = field(default_factory=list)
    heatmap_method: str | None = None  # the map method chosen for these weights; None: the Predictor's default


def save(model: KGClipModel, directory: str | Path, kg: dict | None = None, labels: list[str] | None = None,
         heatmap_method: str | None = None) -> Path:
    """Write ``model`` (its config and every weight), the KG, the label set and the heatmap method
    chosen for it (None: the Predictor's default) to ``directory``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "version": VERSION, "model": model.cfg.to_dict(), "labels": list(labels or [])}
    if heatmap_method is not None:
        meta["heatmap_method"] = heatmap_method
    (out / CONFIG_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / WEIGHTS_FILE), metadata={"format": FORMAT})
    (out / KG_FILE).write_text(json.dumps(kg or {"nodes": [], "edges": []}), encoding="utf-8")
    log.info("Saved checkpoint to %s", out)
    return out


def _read_json(path: Path, max_bytes: int):
    """A JSON file of at most ``max_bytes``; anything else (too big, not UTF-8, not JSON, nested
    deep enough to exhaust the parser's recursion) is one ConfigError."""
    if path.stat().st_size > max_bytes:
        raise ConfigError(f"{path} is larger than {max_bytes >> 20 or 1} MB; this is not a checkpoint file.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        what = "nested too deeply" if isinstance(err, RecursionError) else str(err)
        raise ConfigError(f"{path} is not valid JSON ({what}); re-save the checkpoint.") from None


def read_config(directory: str | Path) -> tuple[ModelConfig, list[str]]:
    """The model config and label set of a checkpoint directory, without loading weights."""
    meta = _read_meta(directory)
    return ModelConfig.from_dict(meta.get("model", {})), meta.get("labels", [])


def _read_meta(directory: str | Path) -> dict:
    """``config.json``, its format, version, labels and heatmap method checked."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"{directory} is not a KG-CLIP checkpoint: {CONFIG_FILE} is missing.")
    meta = _read_json(path, MAX_CONFIG_BYTES)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ConfigError(f"{path} is not a KG-CLIP checkpoint config (format must be {FORMAT!r}).")
    if meta.get("version") != VERSION:
        raise ConfigError(f"{path} has checkpoint version {meta.get('version')!r}; this code reads {VERSION}.")
    labels = meta.get("labels", [])
    if (not isinstance(labels, list) or len(labels) > MAX_LABELS
            or not all(isinstance(x, str) and 0 < len(x) <= MAX_LABEL_LENGTH for x in labels)):
        raise ConfigError(f"{path}: 'labels' must be a list of at most {MAX_LABELS} class names of 1 to "
                          f"{MAX_LABEL_LENGTH} characters.")
    method = meta.get("heatmap_method")
    if method is not None and (not isinstance(method, str) or len(method) > MAX_LABEL_LENGTH):
        raise ConfigError(f"{path}: 'heatmap_method' must be the name of a heatmap method.")
    return meta


def load(directory: str | Path, device: str = "cpu", expected: ModelConfig | None = None) -> Checkpoint:
    """Rebuild the saved model exactly; ``expected`` (optional) must equal the saved config."""
    root = Path(directory)
    meta = _read_meta(root)
    cfg, labels = ModelConfig.from_dict(meta.get("model", {})), meta.get("labels", [])
    if expected is not None and expected != cfg:
        diff = sorted(k for k, v in cfg.to_dict().items() if expected.to_dict()[k] != v)
        raise ConfigError(f"Checkpoint {root} was saved with a different config (fields: {', '.join(diff)}).")
    weights = root / WEIGHTS_FILE
    if not weights.is_file():
        raise WeightsError(f"{root} has no {WEIGHTS_FILE}; the checkpoint is incomplete.")
    # The weights file holds every weight, backbone included, and is loaded strictly below:
    # build the model uninitialised (random initialisation would be overwritten anyway).
    with init_skipped():
        model = build_model(cfg, random_backbone=True, device=device)
    expected_shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    _check_header(weights, expected_shapes)
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise _not_safetensors(weights, err) from err
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise WeightsError(f"{weights} holds non-finite values (NaN or infinity) in {len(bad)} tensors "
                           f"(first: {bad[0]}); the checkpoint is broken.")
    model.load_state_dict(state)
    model.backbone.random_weights = False  # the backbone now holds the checkpoint's trained weights
    log.info("Loaded the trained weights of checkpoint %s.", root)
    return Checkpoint(model=model.to(device).eval(), config=cfg, kg=read_kg(root), labels=labels,
                      heatmap_method=meta.get("heatmap_method"))


def _not_safetensors(weights: Path, err: Exception) -> WeightsError:
    """The one message for a weights file that safetensors cannot read."""
    return WeightsError(f"{weights} is not a safetensors file ({err}); only safetensors weights are loaded.")


def _check_header(weights: Path, expected: dict[str, tuple[int, ...]]) -> None:
    """Compare the tensor names and shapes in the safetensors header with what the config's model
    expects, before any tensor is read: an extra or oversized tensor (40 GB declared in a small
    header) is refused without allocating it."""
    try:
        found, _ = read_header(weights)
    except (OSError, ValueError) as err:
        raise _not_safetensors(weights, err) from None
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    mismatched = sorted(k for k in set(found) & set(expected) if found[k] != expected[k])
    if missing or unexpected or mismatched:
        raise ConfigError(
            f"{weights} does not match its {CONFIG_FILE}: "
            f"{len(missing)} missing, {len(unexpected)} unexpected, {len(mismatched)} mis-shaped tensors "
            f"(first: {(missing + unexpected + mismatched)[0][:120]}). Re-save the checkpoint."
        )


def read_kg(directory: str | Path) -> dict:
    """The checkpoint's knowledge graph (node-link JSON); an empty graph when there is none."""
    path = Path(directory) / KG_FILE
    if not path.is_file():
        return {"nodes": [], "edges": []}
    data = _read_json(path, MAX_KG_BYTES)
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a knowledge graph (a JSON object with 'nodes' and 'edges').")
    return data
