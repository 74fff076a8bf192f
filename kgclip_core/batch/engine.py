"""The batch engine: clips decoded in worker processes beside the model, their frames batched
through the backbone, the label set embedded once, the list sharded over ``torchrun`` ranks.

The ranks are the training's (``training.distributed``: ``torchrun`` on one node or many, NCCL
on GPU, gloo on CPU; a plain process is a world of one), and so is the sharding: rank ``r`` takes
every ``world_size``-th clip still to do (``distributed.shard``, as evaluation does), so no clip is
predicted twice and none is padded in. Every rank reads what is already done before any rank
writes (a barrier), so all of them shard the same list; each appends to its own part file, and
rank 0 merges them into ``--out`` after a final barrier (``journal``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from kgclip_core.batch.journal import Journal
from kgclip_core.batch.records import RunSettings, error_line, prediction_line
from kgclip_core.batch.sources import list_clips
from kgclip_core.errors import ConfigError, KGClipError
from kgclip_core.labels import MAX_LABELS, LabelSet
from kgclip_core.model.kgclip import ClassProgress
from kgclip_core.predictor import Predictor
from kgclip_core.training.distributed import DistEnv, all_reduce_sum, barrier, init_distributed, shard, shutdown
from kgclip_core.video import Clip, read_clip

BATCH_BOUNDS = {"batch_size": (1, 256), "workers": (0, 64), "top_k": (1, MAX_LABELS)}
# Decoded frames wait in memory: a batch being predicted and two per worker (the DataLoader's
# prefetch). A frame is at most 4 x 256 x 256 RGB bytes (video.MAX_ASPECT, the Predictor's short
# side), 0.75 MB: 8,192 frames are at most 6 GB, 2.9 GB for 16:9 clips.
MAX_FRAMES_IN_FLIGHT = 8192
PREFETCH = 2


@dataclass
class BatchOptions:
    """How a batch runs, besides the model and the labels."""

    batch_size: int = 8  # clips whose frames go through the backbone together
    workers: int = 2  # decoding processes beside the model (0: decode in the model's process)
    top_k: int = 5
    retry_errors: bool = False  # predict again the clips whose line is an error
    device: str = "auto"

    def validate(self, frames: int) -> None:
        """Raise ConfigError for a count outside its bounds or too many frames held decoded at once."""
        for name, (lo, hi) in BATCH_BOUNDS.items():
            value = getattr(self, name)
            if not isinstance(value, int) or not lo <= value <= hi:
                raise ConfigError(f"--{name.replace('_', '-')} must be a whole number in [{lo}, {hi}], got {value}.")
        held = self.batch_size * frames * (1 + PREFETCH * self.workers)
        if held > MAX_FRAMES_IN_FLIGHT:
            raise ConfigError(f"--batch-size {self.batch_size} with --workers {self.workers} and {frames} frames "
                              f"a clip keeps up to {held:,} decoded frames in memory; at most "
                              f"{MAX_FRAMES_IN_FLIGHT:,} (docs/LIMITS.md): lower --batch-size or --workers.")


@dataclass
class BatchSummary:
    """What a run did, over all ranks."""

    out: Path
    clips: int  # in the folder or list
    skipped: int  # already in the results file
    predicted: int  # predicted by this run, errors included
    errors: int  # of those, clips that could not be predicted
    is_main: bool  # this process is rank 0 (the one that reports)


@dataclass
class _Decoded:
    """A clip as a decoding worker hands it over: its frames, or why there are none."""

    path: str
    clip: Clip | None
    error: str | None
    seconds: float


class _ClipFiles(Dataset):
    """Decodes one clip per item, the way :meth:`Predictor.predict` reads it."""

    def __init__(self, paths: list[str], num_frames: int, short_side: int) -> None:
        self.paths, self.num_frames, self.short_side = paths, num_frames, short_side

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> _Decoded:
        path = self.paths[index]
        start = time.perf_counter()
        try:
            clip, error = read_clip(path, self.num_frames, short_side=self.short_side), None
        except KGClipError as err:
            clip, error = None, str(err)
        except Exception as err:  # noqa: BLE001 - one odd file must not end a batch of thousands
            clip, error = None, f"unexpected {type(err).__name__} while decoding: {err} (a bug: please report it)"
        return _Decoded(path, clip, error, time.perf_counter() - start)


def run_batch(source: str, out: str | Path, load: Callable[[str], Predictor],
              labels: str | list[str] | LabelSet | None, opts: BatchOptions, frames: int,
              text_progress: ClassProgress | None = None) -> BatchSummary:
    """Predict every clip of ``source`` (a folder or a list file) into ``out``, one JSON line each.

    ``load(device)`` makes the Predictor on this rank's device; ``frames`` is what the command
    asked for (a checkpoint keeps its own). Clips already in ``out`` or its parts are skipped.
    The list, the options and the results file are checked before ``load`` runs.
    """
    opts.validate(frames)
    clips = list_clips(source)
    journal = Journal(out)
    journal.check(inputs=[source])
    env = init_distributed(opts.device)
    try:
        predictor = load(str(env.device))
        opts.validate(predictor.cfg.num_frames)  # a checkpoint samples its own number of frames
        label_set = predictor.resolve_labels(labels)
        settings = RunSettings(predictor.model_name, label_set.name, predictor.cfg.num_frames, opts.top_k)
        done = _done(journal, settings, opts.retry_errors)
        predictor.classes(label_set, progress=text_progress if env.is_main else None)  # once, before any clip
        barrier(env)  # every rank has read what is done before any rank appends
        todo = [path for path in clips if path not in done]
        mine = [todo[i] for i in shard(len(todo), env)]
        predicted, errors = _predict_share(predictor, label_set, settings, mine, journal, env, opts)
        predicted, errors = (int(n) for n in all_reduce_sum([predicted, errors], env))
        barrier(env)  # every part is complete
        if env.is_main:
            journal.merge(clips)
        return BatchSummary(journal.out, len(clips), len(clips) - len(todo), predicted, errors, env.is_main)
    finally:
        shutdown(env)


def _done(journal: Journal, settings: RunSettings, retry_errors: bool) -> set[str]:
    """The clips the results file already has (the latest line of each), refusing a file made
    with other settings: its lines and this run's could not be compared."""
    latest = {record["path"]: record for record, _ in journal.lines()}
    for record in latest.values():
        if differences := settings.differences(record):
            raise ConfigError(f"--out {str(journal.out)!r} holds predictions made with other options "
                              f"({', '.join(differences)}): resume with the same model, labels, frames and top-k, "
                              "or give a new --out.")
    return {path for path, record in latest.items() if not (retry_errors and "error" in record)}


def _predict_share(predictor: Predictor, label_set: LabelSet, settings: RunSettings, paths: list[str],
                   journal: Journal, env: DistEnv, opts: BatchOptions) -> tuple[int, int]:
    """Predict this rank's clips into its part file; returns (clips done, of which errors)."""
    dataset = _ClipFiles(paths, predictor.cfg.num_frames, predictor.cfg.short_side)
    loader = DataLoader(dataset, batch_size=opts.batch_size, num_workers=opts.workers, collate_fn=list,
                        prefetch_factor=PREFETCH if opts.workers else None)
    rank = f" (rank {env.rank} of {env.world_size})" if env.distributed else ""
    errors = 0
    with journal.open_part(env.rank) as part, tqdm(total=len(paths), desc=f"clips{rank}", unit="clip",
                                                    disable=not env.is_main, file=sys.stderr) as bar:
        for batch in loader:
            lines, failed = _predict_batch(predictor, label_set, settings, batch, opts.top_k)
            part.writelines(line + "\n" for line in lines)
            part.flush()  # a kill loses at most this batch's lines (its clips run again)
            errors += failed
            bar.update(len(batch))
            bar.set_postfix(errors=errors)
    return len(paths), errors


def _predict_batch(predictor: Predictor, label_set: LabelSet, settings: RunSettings, batch: list[_Decoded],
                   top_k: int) -> tuple[list[str], int]:
    """The lines of one batch, in its order, and how many of them are errors."""
    good = [item for item in batch if item.clip is not None]
    start = time.perf_counter()
    preds = iter(predictor.predict_batch([item.clip for item in good], label_set, top_k))
    share = (time.perf_counter() - start) / max(len(good), 1)
    lines = [prediction_line(item.path, next(preds), settings, item.seconds, share) if item.clip is not None
             else error_line(item.path, item.error, settings, item.seconds) for item in batch]
    return lines, len(batch) - len(good)
