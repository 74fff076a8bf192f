"""The model's intermediate results for the top class, read out into a Prediction.

The scoring pass (``KGClipModel.score(..., explain=True)``) leaves everything an explanation
shows in its ``ScoreOutput``: multi-region attention maps, the selected semantic units, the
word-frame alignment, the triplet encoder's edge scores. :func:`read_out` copies what concerns
the top class into plain Prediction fields; :func:`concept_maps` makes the maps of the selected
units and of the top class's own concepts by the Predictor's heatmap method, reusing the
prediction's own forward pass where the method can.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from kgclip_core import heatmaps
from kgclip_core.backbone import ClipBackbone
from kgclip_core.heatmaps.attention import LastBlockQKV
from kgclip_core.kg.graph import KnowledgeGraph
from kgclip_core.labels import LabelSet
from kgclip_core.model.kgclip import ClassFeatures, ScoreOutput, VideoFeatures
from kgclip_core.prediction import EdgeScore, Prediction, SelectedUnit, WordAlignment


def read_out(pred: Prediction, out: ScoreOutput, classes: ClassFeatures, kg: KnowledgeGraph, label_set: LabelSet,
             word_pieces: Callable[[str], list[str]], links: dict[int, float]) -> None:
    """Fill ``pred``'s explanation fields from the scoring pass ``out``, for its top class.

    ``word_pieces`` splits a label as the text tower's tokenizer does (the alignment's rows);
    ``links``: the clip's triplet link to concepts ({unit index: score}, the evidence's), which
    an edge whose tail is one of the top class's concepts shows beside its plausibility.
    """
    top = pred.class_indices[0]
    if out.region_maps is not None:
        pred.region_maps = out.region_maps[0].float().cpu().numpy()
    if out.unit_maps is not None:
        pred.unit_maps = out.unit_maps[0].float().cpu().numpy()
    if out.su is not None:
        top_units = classes.class_unit_mask[top]
        ranked = out.su.video_scores if out.su.rank_scores is None else out.su.rank_scores
        for rank, u in enumerate(out.su.indices[0].tolist()):
            pred.units.append(SelectedUnit(
                text=classes.unit_texts[u], type=classes.unit_types[u],
                score=float(out.su.video_scores[0, u]), weight=float(out.su.weights[0, rank]),
                frame_scores=out.su.frame_scores[0, :, u].tolist(), in_top_class=bool(top_units[u]),
                rank_score=float(ranked[0, u])))
    if out.wti is not None:
        mask = classes.word_mask[top]
        pred.alignment = WordAlignment(
            label=pred.labels[0],
            words=word_pieces(pred.labels[0])[: int(mask.sum())],
            similarity=out.wti.similarity[0, top][mask].float().cpu().numpy(),
            word_weights=out.wti.word_weights[top][mask].tolist(),
            frame_weights=out.wti.frame_weights[0].tolist())
    if out.edge_scores is not None:
        # The clip's link to an edge's tail is the evidence's link to that concept.
        own = {classes.unit_texts[u]: u for u in classes.class_unit_mask[top].nonzero().flatten().tolist()}
        for k, e in enumerate(out.edge_index.tolist()):
            head, relation, tail = classes.triples[e]
            if head == pred.labels[0]:
                pred.edges.append(EdgeScore(head, relation, tail, float(out.edge_scores[k]),
                                            links.get(own.get(tail, -1))))
    pred.kg = kg.subgraph([label_set.classes[top]]).to_json()


def concept_maps(backbone: ClipBackbone, images: torch.Tensor, video: VideoFeatures, out: ScoreOutput,
                 classes: ClassFeatures, evidence_units: list[int], method: str,
                 recorded: LastBlockQKV | None) -> dict[str, np.ndarray]:
    """The Prediction's maps that ``method`` makes, by field name: ``unit_maps`` (the selected
    units'; the model's own cosine maps are kept for ``cosine``) and ``evidence_maps`` (the top
    class's concepts ``evidence_units``, for the single-pass methods only: the gradient methods
    would cost a pass per concept). Each [T, K, H', W'] on the patch grid, summing to 1.

    ``images`` [T, 3, S, S] and ``video`` are the prediction's frames and their encoding;
    ``recorded``: what that pass recorded for ``method`` (``heatmaps.recorder``).
    """
    wanted: dict[str, list[int]] = {}
    if out.su is not None and method != "cosine":
        wanted["unit_maps"] = out.su.indices[0].tolist()
    if evidence_units and method in heatmaps.SINGLE_PASS:
        wanted["evidence_maps"] = evidence_units
    if not wanted:
        return {}
    # One call for both: the attention-path methods rerun the last block once.
    units = [u for ids in wanted.values() for u in ids]
    maps = heatmaps.text_maps(backbone, images, classes.unit_emb[units], method, recorded,
                              patches=video.patches[0], concepts=classes.unit_emb)
    maps = F.adaptive_avg_pool2d(maps, video.grid)  # pixel maps (integrated gradients) onto the grid
    maps = (maps / maps.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-12)).cpu().numpy()
    split = np.cumsum([len(ids) for ids in wanted.values()])[:-1]
    return dict(zip(wanted, np.split(maps, split, axis=1)))
