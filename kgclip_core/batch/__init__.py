"""Batch recognition: a folder or a list of clips in, one JSON line per clip out (``kgclip predict
FOLDER --out preds.jsonl``), resumable, sharded over ``torchrun`` ranks.

- ``sources``: which clips a folder or a list file names, bounded before any model loads;
- ``records``: what one clip's JSON line holds (a prediction, or the error that stopped it);
- ``journal``: the results file and the ranks' part files: whose they are, what is done, the merge;
- ``engine``: decoding in worker processes beside the model, frames batched through the backbone,
  the label set embedded once, the list sharded over ranks by the training's distributed engine.

docs/BATCH.md has the commands, the output format, the resume rules and the measured throughput.
"""

from kgclip_core.batch.engine import BatchOptions, BatchSummary, run_batch
from kgclip_core.batch.sources import is_batch_source, list_clips

__all__ = ["BatchOptions", "BatchSummary", "is_batch_source", "list_clips", "run_batch"]
