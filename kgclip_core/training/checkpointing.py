"""Training checkpoints: atomic, best and last kept, exact resume, export for the Predictor.

A training checkpoint (``<output_dir>/checkpoints/{last,best}.pt``) holds the model,
optimizer, scheduler and gradient-scaler states, the random states of python, numpy and
torch (of every rank), the epoch and step, and the config that wrote it. Files are written
to a temporary name and moved into place with ``os.replace``: a crash or a full disk while
saving leaves the previous checkpoint whole. Loading uses ``torch.load(weights_only=True)``,
so a checkpoint cannot run code. The best model is also exported as a Predictor checkpoint
directory (``config.json`` + ``model.safetensors`` + ``kg.json``) that the app loads with
``--checkpoint DIR``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kgclip_core.errors import ConfigError, KGClipError
from kgclip_core.model import checkpoint as model_checkpoint
from kgclip_core.model.kgclip import KGClipModel

log = logging.getLogger(__name__)

FORMAT = "kgclip-train-state"
VERSION = 1


def rng_state() -> dict[str, Any]:
    """The random states of python, numpy and torch (and CUDA), in weights-only-safe types."""
    np_state = np.random.get_state(legacy=False)
    state = {
        "python": random.getstate(),
        "numpy": {"key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)), "pos": np_state["state"]["pos"],
                  "has_gauss": np_state["has_gauss"], "gauss": np_state["gauss"]},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    random.setstate(state["python"])
    np_state = state["numpy"]
    np.random.set_state({
        "bit_generator": "MT19937",
        "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": int(np_state["pos"])},
        "has_gauss": int(np_state["has_gauss"]),
        "gauss": float(np_state["gauss"]),
    })
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file, flushed to disk, then moved over ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        out.update(_flatten(value, name + ".") if isinstance(value, dict) else {name: value})
    return out


def config_diff(saved: dict, current: dict) -> list[str]:
    """``key: saved -> current`` for every leaf that differs between two nested configs."""
    a, b = _flatten(saved), _flatten(current)
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


class CheckpointManager:
    """Writes and reads ``last.pt`` and ``best.pt`` of one run; checks they match its config."""

    def __init__(self, directory: str | Path, learning_config: dict) -> None:
        self.dir = Path(directory)
        # JSON round trip: tuples become lists, exactly as they come back from a file.
        self.config = json.loads(json.dumps(learning_config))
        self.last = self.dir / "last.pt"
        self.best = self.dir / "best.pt"

    def save(self, state: dict[str, Any], is_best: bool = False) -> None:
        """Write ``last.pt`` (and ``best.pt`` when ``is_best``); the old files survive a failure."""
        self.dir.mkdir(parents=True, exist_ok=True)
        payload = {"format": FORMAT, "version": VERSION, "config": json.dumps(self.config), **state}
        try:
            atomic_save(payload, self.last)
            if is_best:
                tmp = self.best.with_name(self.best.name + ".tmp")
                try:
                    shutil.copyfile(self.last, tmp)
                    os.replace(tmp, self.best)
                finally:
                    tmp.unlink(missing_ok=True)
        except OSError as err:
            raise KGClipError(
                f"Could not write a checkpoint to {self.dir} ({err.strerror or err}); is the disk full? "
                "The previous checkpoint there is still valid: free space and resume from it."
            ) from err
        log.info("Saved checkpoint %s (epoch %s, step %s)%s", self.last, state.get("epoch"), state.get("step"),
                 " as best" if is_best else "")

    def load(self, path: str | Path | None = None) -> dict[str, Any] | None:
        """A saved state (``last.pt`` by default), or None when there is none.

        Raises :class:`ConfigError` when it was written by a different config.
        """
        path = Path(path) if path is not None else self.last
        if not path.is_file():
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises pickle, runtime and zip errors alike
            raise ConfigError(f"{path} is not a readable training checkpoint ({err}).") from err
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ConfigError(f"{path} is not a KG-CLIP training checkpoint.")
        diff = config_diff(json.loads(state["config"]), self.config)
        if diff:
            raise ConfigError(
                f"Refusing to resume from {path}: it was written by a different config "
                f"({'; '.join(diff[:8])}{' ...' if len(diff) > 8 else ''}). Resume with the config "
                "that wrote it, or set run.output_dir to a new folder (or run.resume=false) to start afresh."
            )
        return state


def recover_export(directory: str | Path) -> None:
    """Put the previous export back when a crash fell between the two renames of
    :func:`export_predictor` (``DIR`` gone, ``DIR.old`` whole): then ``DIR`` is loadable again."""
    target = Path(directory)
    old = target.with_name(target.name + ".old")
    if not target.exists() and old.is_dir():
        os.replace(old, target)
        log.warning("Restored %s from %s (an export was interrupted).", target, old)


def export_predictor(model: KGClipModel, directory: str | Path, kg: dict, labels: list[str],
                     heatmap_method: str | None = None) -> Path:
    """Write ``model`` as a Predictor checkpoint directory, replacing an older one whole;
    ``heatmap_method`` is the map method chosen for it (None: the Predictor's default).

    At every instant either ``DIR`` or, between the two renames, ``DIR.old`` holds a complete
    export; :func:`recover_export` (run first here, and on resume) moves that one back."""
    target = Path(directory)
    tmp = target.with_name(target.name + ".tmp")
    old = target.with_name(target.name + ".old")
    recover_export(target)
    for leftover in (tmp, old):
        shutil.rmtree(leftover, ignore_errors=True)
    try:
        model_checkpoint.save(model, tmp, kg=kg, labels=labels, heatmap_method=heatmap_method)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise KGClipError(f"Could not export the model to {target} ({err.strerror or err}); is the disk full?") from err
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
    return target
