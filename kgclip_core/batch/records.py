"""One clip's line in a batch's results file: its prediction, or the error that stopped it.

Every line carries ``FORMAT`` (so a file can be recognised as this tool's own before anything is
appended to it) and the run's settings (so a resumed run never mixes predictions of another model,
label set, frame count or top-k into one file). docs/BATCH.md shows a line.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from kgclip_core.prediction import Prediction

FORMAT = "kgclip-batch/1"


@dataclass(frozen=True)
class RunSettings:
    """What makes two runs' predictions comparable, written in every line."""

    model: str
    label_set: str
    frames: int
    top_k: int

    def differences(self, record: dict) -> list[str]:
        """The settings ``record`` was made with where they differ from these, as ``name: theirs != ours``."""
        return [f"{name} {record.get(name)!r} (now {ours!r})" for name, ours in asdict(self).items()
                if record.get(name) != ours]


def _line(path: str, settings: RunSettings, body: dict, decode_s: float, model_s: float) -> str:
    timing = {"decode_s": round(decode_s, 4), "model_s": round(model_s, 4)}
    return json.dumps({"format": FORMAT, "path": path, **asdict(settings), **body, "timing": timing},
                      ensure_ascii=False)


def prediction_line(path: str, pred: Prediction, settings: RunSettings, decode_s: float, model_s: float) -> str:
    """The JSON line of a clip's prediction: the top-k labels and scores, "not sure", the top
    action's evidence (its concepts the clip shows and does not), and the time it took.
    ``model_s`` is the clip's share of its batch's pass through the model."""
    present = [e.text for e in pred.evidence if e.present]
    body = {
        "labels": pred.labels,
        "classes": pred.class_names,
        "scores": [round(s, 6) for s in pred.scores],
        "unsure": pred.unsure,
        "fit": None if pred.fit is None else round(pred.fit, 4),
        "evidence": {"measure": pred.evidence_measure, "shown": len(present), "of": len(pred.evidence),
                     "present": present, "absent": [e.text for e in pred.evidence if not e.present]},
        "shown_concepts": pred.shown_concepts,
        "warnings": pred.warnings,
    }
    return _line(path, settings, body, decode_s, model_s)


def error_line(path: str, message: str, settings: RunSettings, decode_s: float) -> str:
    """The JSON line of a clip that could not be predicted, with the one-line reason."""
    return _line(path, settings, {"error": " ".join(message.split())}, decode_s, 0.0)


def parse_line(line: str) -> dict | None:
    """The record a line holds, or None when it is not one of this tool's lines."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("format") != FORMAT or not isinstance(record.get("path"), str):
        return None
    return record
