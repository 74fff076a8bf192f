"""The model's intermediate results for the top class, read out into a Prediction.

The scoring pass (``KGClipModel.score(..., explain=True)``) leaves everything an explanation
shows in its ``ScoreOutput``: multi-region attention maps, the selected semantic units, the
word-frame alignment, the triplet encoder's edge scores. :func:`read_out` copies what concerns
the top class into plain Prediction fields; :func:`concept_maps` makes the maps of the selected
units and of the top class's own concepts by the Predictor's heatmap method, reusing the
prediction's own forward pass where the method can.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from kgclip_core import heatmaps
from kgclip_core.backbone import ClipBackbone
from kgclip_core.heatmaps.attention import LastBlockQKV
from kgclip_core.kg.graph import KnowledgeGraph
from kgclip_core.labels import LabelSet
from kgclip_core.model.kgclip import ClassFeatures, KGClipModel, ScoreOutput, VideoFeatures
from kgclip_core.prediction import EdgeScore, Prediction, SelectedUnit, WordAlignment


def triplet_links(model: KGClipModel, out: ScoreOutput, classes: ClassFeatures, units: list[int]) -> dict[int, float]:
    """The model's triplet link from the clip to each of ``units`` ({unit index: score}, both
    directions averaged); empty without the KG triplet encoder."""
    if model.triplet is None or not units:
        return {}
    fwd, inv = model.triplet.pair_scores(out.video_emb[:1], "video-movement", classes.unit_emb[units])
    return dict(zip(units, (0.5 * (fwd + inv))[0].float().tolist()))


def read_out(pred: Prediction, out: ScoreOutput, classes: ClassFeatures, kg: KnowledgeGraph, label_set: LabelSet,
             model: KGClipModel) -> None:
    """Fill ``pred``'s explanation fields from ``model``'s scoring pass ``out``, for its top class:
    region and unit maps, the selected units, the word-frame alignment, and the KG edges of the
    top class with the triplet encoder's plausibility and the clip's link to each edge's tail."""
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
            words=model.backbone.word_pieces(pred.labels[0])[: int(mask.sum())],
            similarity=out.wti.similarity[0, top][mask].float().cpu().numpy(),
            word_weights=out.wti.word_weights[top][mask].tolist(),
            frame_weights=out.wti.frame_weights[0].tolist())
    if out.edge_scores is not None:
        own = {classes.unit_texts[u]: u for u in classes.class_unit_mask[top].nonzero().flatten().tolist()}
        links = triplet_links(model, out, classes, list(own.values()))
        for k, e in enumerate(out.edge_index.tolist()):
            head, relation, tail = classes.triples[e]
            if head == pred.labels[0]:
                pred.edges.append(EdgeScore(head, relation, tail, float(out.edge_scores[k]),
                                            links.get(own.get(tail, -1))))
    pred.kg = kg.subgraph([label_set.classes[top]]).to_json()


def grid_maps(maps: torch.Tensor, grid: tuple[int, int]) -> np.ndarray:
    """Maps [N, K, h, w] of ``heatmaps.text_maps`` as a Prediction holds them: on the patch ``grid``
    (pixel maps, Integrated Gradients', pooled onto it), each summing to 1."""
    maps = F.adaptive_avg_pool2d(maps, grid)
    return (maps / maps.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-12)).cpu().numpy()


def concept_maps(backbone: ClipBackbone, images: torch.Tensor, video: VideoFeatures, out: ScoreOutput,
                 classes: ClassFeatures, concepts: dict[str, list[int]], method: str,
                 recorded: LastBlockQKV | None) -> dict[str, np.ndarray]:
    """The maps that ``method`` makes: ``unit_maps`` (the selected units'; the model's own cosine
    maps are kept for ``cosine``), and for each named list of ``concepts`` (unit indices, e.g.
    the top class's and its rival's) their maps, for the single-pass methods only: the gradient
    methods would cost a pass per concept. Each [T, K, H', W'] on the patch grid, summing to 1.

    ``images`` [T, 3, S, S] and ``video`` are the prediction's frames and their encoding;
    ``recorded``: what that pass recorded for ``method`` (``heatmaps.recorder``).
    """
    wanted: dict[str, list[int]] = {}
    if out.su is not None and method != "cosine":
        wanted["unit_maps"] = out.su.indices[0].tolist()
    if method in heatmaps.SINGLE_PASS:
        wanted.update((name, units) for name, units in concepts.items() if units)
    if not wanted:
        return {}
    # One call for both: the attention-path methods rerun the last block once.
    units = [u for ids in wanted.values() for u in ids]
    maps = heatmaps.text_maps(backbone, images, classes.unit_emb[units], method, recorded,
                              patches=video.patches[0], concepts=classes.unit_emb)
    maps = grid_maps(maps, video.grid)
    split = np.cumsum([len(ids) for ids in wanted.values()])[:-1]
    return dict(zip(wanted, np.split(maps, split, axis=1)))
