"""`KGClipModel`: the CLIP backbone plus the KG-CLIP / ASU / WTI heads, in three calls.

Like timm's ``forward_features`` / ``forward_head`` split, the model is used as::

    video = model.encode_video(images)        # once per clip: frames, patches, regions
    classes = model.encode_classes(inputs)    # once per label set: prompts, words, SUs, triples
    out = model.score(video, classes)         # logits and everything the explanation shows

``score`` runs the parts that need both sides: semantic-unit selection, the cross-modal
decoder (it reads the selected SUs) and the score terms

    logits = logit_scale * (a*cos(video, class) + b*WTI + c*triplet) / (a + b + c)

over the terms that are on; dividing by the active weights keeps logits on CLIP's scale,
so with only the first term on (and MRA, SU, decoder off) they are exactly mean-pooled
CLIP. With ``training_free`` the model has no new parameters and scores a class by its
prompt similarity and its best-matching semantic units (classification by description).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from kgclip_core.backbone import BackboneConfig, ClipBackbone, TextProgress, load_backbone
from kgclip_core.errors import LabelError
from kgclip_core.model.config import ModelConfig
from kgclip_core.model.decoder import VideoDecoder
from kgclip_core.model.hubness import HubCorrection
from kgclip_core.model.mra import MultiRegionAttention
from kgclip_core.model.su_select import SUSelection, select_units
from kgclip_core.model.triplet import RELATIONS, TripletEncoder, relation_id
from kgclip_core.model.wti import WeightedTokenInteraction, WTIOutput

# Called with (texts embedded so far, texts a label set needs in all).
ClassProgress = Callable[[int, int], None]


@dataclass
class ClassInputs:
    """The texts of a label set, as the knowledge-graph adapter hands them over.

    ``class_units[c]`` lists indices into ``unit_texts`` (the class's semantic units);
    ``triples`` are ``(head_text, relation, tail_text)`` with relation in ``RELATIONS``.
    """

    names: list[str]
    prompts: list[list[str]]
    unit_texts: list[str] = field(default_factory=list)
    unit_types: list[str] = field(default_factory=list)
    class_units: list[list[int]] = field(default_factory=list)
    triples: list[tuple[str, str, str]] = field(default_factory=list)

    def validate(self) -> None:
        """Raise :class:`LabelError` when the lists do not fit together."""
        if not self.names:
            raise LabelError("The label set is empty; give at least one class name.")
        if len(self.prompts) != len(self.names) or any(not p for p in self.prompts):
            raise LabelError("Give at least one prompt for every class (prompts[c] for names[c]).")
        if len(self.unit_types) != len(self.unit_texts):
            raise LabelError("unit_types must give one type per entry of unit_texts.")
        if self.class_units and len(self.class_units) != len(self.names):
            raise LabelError("class_units must have one list of unit indices per class.")
        u = len(self.unit_texts)
        if any(not 0 <= i < u for units in self.class_units for i in units):
            raise LabelError(f"class_units holds an index outside unit_texts (0..{u - 1}).")
        bad = sorted({r for _, r, _ in self.triples if r not in RELATIONS})
        if bad:
            raise LabelError(f"Unknown triple relation(s) {bad}; use one of {list(RELATIONS)}.")


@dataclass
class ClassFeatures:
    """Embeddings of a label set, computed once by :meth:`KGClipModel.encode_classes`."""

    names: list[str]
    class_emb: torch.Tensor  # [C, D] prompt ensemble, L2-normalised
    unit_texts: list[str]
    unit_types: list[str]
    unit_emb: torch.Tensor  # [U, D] L2-normalised
    class_unit_mask: torch.Tensor  # [C, U] bool: unit u belongs to class c
    word_tokens: torch.Tensor | None = None  # [C, L, D] tokens of the class name (WTI)
    word_mask: torch.Tensor | None = None  # [C, L] True on real word tokens
    triples: list[tuple[str, str, str]] = field(default_factory=list)
    triple_heads: torch.Tensor | None = None  # [E, D]
    triple_tails: torch.Tensor | None = None  # [E, D]
    triple_relations: torch.Tensor | None = None  # [E] relation ids
    # The triplet encoder's plausibility of edges scored so far, {edge index: score}, and the
    # encoder weights' versions they were scored with (KGClipModel.edge_plausibility).
    kept_edge_scores: dict[int, float] = field(default_factory=dict)
    kept_edge_version: tuple[int, ...] = ()


@dataclass
class VideoFeatures:
    """Everything computed from the frames alone, by :meth:`KGClipModel.encode_video`."""

    frames: torch.Tensor  # [B, T, D] CLS embeddings in the joint space
    patches: torch.Tensor  # [B, T, P, D] patch tokens in the joint space
    grid: tuple[int, int]  # (H', W'), H' * W' = P
    frame_mask: torch.Tensor  # [B, T] True on real (not padded) frames
    regions: torch.Tensor | None = None  # [B, T, R, D] MRA region features
    region_maps: torch.Tensor | None = None  # [B, T, R, H', W'], each map sums to 1

    def item(self, index: int) -> VideoFeatures:
        """Video ``index`` of the batch alone, as a batch of one (views, no copies)."""
        one = slice(index, index + 1)
        return VideoFeatures(self.frames[one], self.patches[one], self.grid, self.frame_mask[one],
                             None if self.regions is None else self.regions[one],
                             None if self.region_maps is None else self.region_maps[one])


@dataclass
class ScoreOutput:
    """Logits and the intermediate results the explanation shows."""

    logits: torch.Tensor  # [B, C]
    terms: dict[str, torch.Tensor]  # unscaled per-term scores [B, C], e.g. "video_text"
    video_emb: torch.Tensor  # [B, D]
    frame_tokens: torch.Tensor  # [B, T, D] (decoded when the decoder is on)
    logit_scale: torch.Tensor
    su: SUSelection | None = None
    unit_maps: torch.Tensor | None = None  # [B, T, K, H', W'] where each selected SU is
    region_maps: torch.Tensor | None = None  # [B, T, R, H', W']
    wti: WTIOutput | None = None
    triplet_directions: tuple[torch.Tensor, torch.Tensor] | None = None  # fwd, inv [B, C]
    # The KG triples of each video's top class (their indices into ClassFeatures.triples): a
    # label set has thousands, and scoring them all would cost more than the scores themselves.
    edge_index: torch.Tensor | None = None  # [K]
    edge_scores: torch.Tensor | None = None  # [K] plausibility of each of those triples

    def item(self, index: int) -> ScoreOutput:
        """Video ``index`` of a batch scored without explanations (``score(..., explain=False)``)
        alone, as a batch of one: what a batch of one would have given where the scoring keeps
        videos apart (``triplet_inference="pair"``)."""
        if self.unit_maps is not None or self.edge_index is not None:
            raise ValueError("ScoreOutput.item takes a scoring without explanations (explain=False).")
        one = slice(index, index + 1)
        wti = self.wti
        return ScoreOutput(
            logits=self.logits[one], terms={name: term[one] for name, term in self.terms.items()},
            video_emb=self.video_emb[one], frame_tokens=self.frame_tokens[one], logit_scale=self.logit_scale,
            su=None if self.su is None else self.su.item(index),
            region_maps=None if self.region_maps is None else self.region_maps[one],
            wti=None if wti is None else WTIOutput(wti.scores[one], wti.similarity[one], wti.word_weights,
                                                   wti.frame_weights[one]),
            triplet_directions=None if self.triplet_directions is None else tuple(
                d[one] for d in self.triplet_directions))


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean of ``x`` over ``dim`` counting only entries where ``mask`` is True."""
    m = mask.to(x.dtype)
    while m.dim() < x.dim():
        m = m.unsqueeze(-1)
    return (x * m).sum(dim) / m.sum(dim).clamp_min(1.0)


def weighted_mean(terms: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    """Sum of ``weights[name] * terms[name]`` divided by the sum of the weights."""
    return sum(w * terms[name] for name, w in weights.items()) / sum(weights.values())


def dense_maps(
    patches: torch.Tensor, grid: tuple[int, int], texts: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Where each text is in each frame: patches [B,T,P,D], texts [B,K,D] -> [B,T,K,H',W'].

    Softmax over space of patch-text cosines, so every map sums to 1; meaningful because the
    patch tokens are projected into the joint space.
    """
    sim = torch.einsum("btpd,bkd->btkp", F.normalize(patches, dim=-1), F.normalize(texts, dim=-1))
    return torch.softmax(sim / temperature, dim=-1).reshape(*sim.shape[:3], *grid)


def build_model(
    cfg: ModelConfig, *, random_backbone: bool = False, device: str = "auto", use_text_cache: bool = True
) -> KGClipModel:
    """Load the backbone named by ``cfg`` and wrap it with the heads ``cfg`` switches on.

    ``random_backbone`` skips the pretrained weights (tests, benchmarks, and checkpoints,
    whose weights file holds the backbone).
    """
    backbone = load_backbone(
        BackboneConfig(
            model_name=cfg.backbone,
            pretrained=None if random_backbone else cfg.pretrained,
            allow_random=random_backbone or cfg.pretrained is None,
            device=device,
            use_text_cache=use_text_cache,
        )
    )
    return KGClipModel(cfg, backbone)


class KGClipModel(nn.Module):
    """CLIP backbone + MRA + SU selection + cross-modal decoder + WTI + triplet encoder."""

    def __init__(self, cfg: ModelConfig, backbone: ClipBackbone):
        super().__init__()
        self.cfg = cfg
        self.backbone = backbone
        d = backbone.embed_dim
        self.mra = MultiRegionAttention(d, cfg.num_regions, cfg.region_prior_sigma) if cfg.use_mra else None
        self.decoder = (
            VideoDecoder(d, cfg.decoder_layers, cfg.decoder_heads, cfg.decoder_mlp_ratio, cfg.temporal_kernel)
            if cfg.use_decoder
            else None
        )
        self.wti = WeightedTokenInteraction(d) if cfg.use_wti else None
        self.triplet = TripletEncoder(d, cfg.triplet_layers, cfg.triplet_heads) if cfg.use_triplet else None
        self.hub = HubCorrection(d, cfg.su_hub_correction) if cfg.use_su and cfg.su_hub_correction > 0 else None

    def head_modules(self) -> dict[str, nn.Module]:
        """The new modules that are on, by name (for optimiser groups and parameter counts)."""
        heads = {"mra": self.mra, "decoder": self.decoder, "wti": self.wti, "triplet": self.triplet}
        return {name: module for name, module in heads.items() if module is not None}

    # ----------------------------------------------------------------- video side
    def encode_video(self, images: torch.Tensor, frame_mask: torch.Tensor | None = None) -> VideoFeatures:
        """images [B, T, 3, S, S] (preprocessed) -> :class:`VideoFeatures`.

        ``frame_mask`` [B, T] marks real frames when clips of different length are padded.
        """
        b, t = images.shape[:2]
        cls, patches = self.backbone.encode_frames(images.flatten(0, 1))
        grid = tuple(self.backbone.grid_size)
        if frame_mask is None:
            frame_mask = torch.ones(b, t, dtype=torch.bool, device=cls.device)
        feats = VideoFeatures(
            frames=cls.reshape(b, t, -1),
            patches=patches.reshape(b, t, *patches.shape[1:]),
            grid=grid,
            frame_mask=frame_mask,
        )
        if self.mra is not None:
            regions, maps = self.mra(cls, patches, grid)
            feats.regions = regions.reshape(b, t, *regions.shape[1:])
            feats.region_maps = maps.reshape(b, t, *maps.shape[1:])
        return feats

    # ----------------------------------------------------------------- text side
    def encode_classes(self, inputs: ClassInputs, progress: ClassProgress | None = None) -> ClassFeatures:
        """Embed a label set's prompts, and what the active heads need of the rest: semantic
        units (SU selection, triplets), class-name words (WTI), triple ends (triplets).

        With a frozen text tower (``cfg.train_text`` off) the embeddings come from the
        backbone's cache and carry no gradient: compute them once per label set. With
        ``train_text`` on, in training mode with grad mode on, they are computed afresh,
        uncached, and carry gradients into the text tower: recompute them every training step.
        Otherwise (evaluation, the Predictor) they come from the cache, keyed by the text
        tower's weights, so a fine-tuned tower is embedded once per label set too.
        ``progress(done, total)`` follows the texts embedded so far out of all it needs.
        """
        grad = self.cfg.train_text and self.training and torch.is_grad_enabled()
        with torch.set_grad_enabled(grad):
            return self._encode_classes(inputs, grad, progress)

    def _encode_classes(self, inputs: ClassInputs, grad: bool, progress: ClassProgress | None) -> ClassFeatures:
        inputs.validate()
        bb = self.backbone
        c, d = len(inputs.names), bb.embed_dim
        flat = [p for prompts in inputs.prompts for p in prompts]
        # Units feed SU selection and the triplet losses; without either they are never read.
        unit_texts = inputs.unit_texts if self.cfg.use_su or self.triplet is not None else []
        triples = list(dict.fromkeys(tuple(t) for t in inputs.triples)) if self.triplet is not None else []
        # Triple ends that are class names or units reuse those embeddings.
        other = sorted({x for h, _, t in triples for x in (h, t)} - set(inputs.names) - set(unit_texts))
        total = len(flat) + len(unit_texts) + (c if self.wti is not None else 0) + len(other)
        done = 0

        def step(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress(done, total)

        prompt_emb = F.normalize(bb.encode_text(flat, grad=grad, progress=step), dim=-1)
        owner = torch.repeat_interleave(torch.tensor([len(p) for p in inputs.prompts]))
        class_emb = torch.zeros(c, d, device=prompt_emb.device).index_add(0, owner.to(prompt_emb.device), prompt_emb)
        class_emb = F.normalize(class_emb, dim=-1)
        if unit_texts:
            unit_emb = F.normalize(bb.encode_text(unit_texts, grad=grad, progress=step), dim=-1)
        else:
            unit_emb = class_emb.new_zeros(0, d)
        mask = torch.zeros(c, len(unit_texts), dtype=torch.bool, device=class_emb.device)
        if unit_texts:
            for ci, units in enumerate(inputs.class_units):
                mask[ci, list(units)] = True
        feats = ClassFeatures(
            names=list(inputs.names),
            class_emb=class_emb,
            unit_texts=list(unit_texts),
            unit_types=list(inputs.unit_types) if unit_texts else [],
            unit_emb=unit_emb,
            class_unit_mask=mask,
        )
        if self.wti is not None:
            # WTI aligns the words of the class name itself, not the prompt template.
            _, tokens, word_mask = bb.encode_text_tokens(inputs.names, grad=grad, progress=step)
            length = int(word_mask.any(0).nonzero().max()) + 1 if word_mask.any() else 1
            feats.word_tokens, feats.word_mask = tokens[:, :length], word_mask[:, :length]
        if triples:
            self._embed_triples(triples, other, feats, grad, step)
        return feats

    def _embed_triples(self, triples: list[tuple[str, str, str]], other: list[str], feats: ClassFeatures,
                       grad: bool, progress: TextProgress) -> None:
        """Triple ends reuse the class and unit embeddings; ``other`` texts are encoded once."""
        known = dict(zip(feats.names, feats.class_emb))
        known.update(zip(feats.unit_texts, feats.unit_emb))
        if other:
            emb = self.backbone.encode_text(other, grad=grad, progress=progress)
            known.update(zip(other, F.normalize(emb, dim=-1)))
        feats.triples = triples
        feats.triple_heads = torch.stack([known[h] for h, _, _ in triples])
        feats.triple_tails = torch.stack([known[t] for _, _, t in triples])
        feats.triple_relations = torch.tensor(
            [relation_id(r) for _, r, _ in triples], device=feats.class_emb.device
        )

    @staticmethod
    def unit_tokens(video: VideoFeatures) -> torch.Tensor:
        """The visual tokens semantic units are matched against: [B, T, V, D], each frame's CLS
        embedding and then, with MRA, its region features."""
        visual = video.frames[:, :, None]
        return visual if video.regions is None else torch.cat([visual, video.regions], dim=2)

    # ----------------------------------------------------------------- scoring
    @property
    def scores_videos_apart(self) -> bool:
        """Whether a video's scores in eval mode are the same in any batch (everything but KG-CLIP's
        batch-averaged triplet inference): then a batch may be scored at once and split with
        :meth:`ScoreOutput.item`."""
        return self.triplet is None or self.cfg.training_free or self.cfg.triplet_inference != "averaged"

    def score(self, video: VideoFeatures, classes: ClassFeatures, explain: bool = True) -> ScoreOutput:
        """Score every video against every class; ``explain`` adds maps and KG edge scores."""
        if self.cfg.training_free:
            return self._score_training_free(video, classes, explain)
        cfg = self.cfg
        scale = self.backbone.logit_scale
        su = None
        if cfg.use_su and classes.unit_emb.shape[0] > 0:
            visual = self.unit_tokens(video)
            bias = None
            if self.hub is not None:
                if self.training:
                    self.hub.update(visual)
                bias = self.hub.bias(classes.unit_emb, visual.shape[2])
            su = select_units(visual, classes.unit_emb, cfg.su_top_k, cfg.su_temperature,
                              per_frame=cfg.su_selection == "frame", bias=bias)
        if self.decoder is not None:
            indices, weights = su.per_frame() if su is not None else (None, None)
            units = classes.unit_emb[indices] if su is not None else None
            frame_tokens = self.decoder(video.frames, video.regions, units, weights)
        else:
            frame_tokens = video.frames
        video_emb = masked_mean(frame_tokens, video.frame_mask, dim=1)
        out = ScoreOutput(
            logits=video_emb.new_zeros(0),
            terms={},
            video_emb=video_emb,
            frame_tokens=frame_tokens,
            logit_scale=scale,
            su=su,
            region_maps=video.region_maps,
        )
        weights = {}
        if cfg.use_video_text:
            out.terms["video_text"] = F.normalize(video_emb, dim=-1) @ classes.class_emb.T
            weights["video_text"] = cfg.weight_video_text
        if self.wti is not None:
            out.wti = self.wti(classes.word_tokens, classes.word_mask, frame_tokens, video.frame_mask)
            out.terms["wti"] = out.wti.scores
            weights["wti"] = cfg.weight_wti
        if self.triplet is not None:
            other = weighted_mean(out.terms, weights) if weights else None
            fwd, inv = self._video_action_triplets(video_emb, classes.class_emb, other)
            out.triplet_directions = (fwd, inv)
            out.terms["triplet"] = 0.5 * (fwd + inv)
            weights["triplet"] = cfg.weight_triplet
        out.logits = scale * weighted_mean(out.terms, weights)
        if explain:
            self._explain(video, classes, out)
        return out

    def _video_action_triplets(
        self, video_emb: torch.Tensor, class_emb: torch.Tensor, other: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward and inverse (video, video-action, class) scores [B, C].

        At inference with ``triplet_inference="averaged"``, KG-CLIP's batch-averaged scores.
        With a shortlist (inference only), classes outside each video's top ones by the
        ``other`` terms get the shortlist's lowest triplet score: since their other terms
        are lower too, they rank below every shortlisted class, in their original order.
        """
        if not self.training and self.cfg.triplet_inference == "averaged":
            return self.triplet.averaged_scores(video_emb, "video-action", class_emb)
        n = self.cfg.triplet_shortlist
        if self.training or other is None or not 0 < n < class_emb.shape[0]:
            return self.triplet.pair_scores(video_emb, "video-action", class_emb)
        top = other.topk(n, dim=1).indices  # [B, n]
        heads = video_emb[:, None].expand(-1, n, -1).reshape(-1, video_emb.shape[-1])
        fwd, inv = self.triplet.both_directions(heads, "video-action", class_emb[top].flatten(0, 1))
        filled = []
        for scores in (fwd.reshape(top.shape), inv.reshape(top.shape)):
            full = scores.amin(dim=1, keepdim=True).expand(-1, class_emb.shape[0]).clone()
            filled.append(full.scatter(1, top, scores))
        return filled[0], filled[1]

    def _score_training_free(self, video: VideoFeatures, classes: ClassFeatures, explain: bool) -> ScoreOutput:
        """Prompt similarity averaged with the mean of the class's best-matching SU similarities."""
        scale = self.backbone.logit_scale
        video_emb = masked_mean(video.frames, video.frame_mask, dim=1)
        prompt = F.normalize(video_emb, dim=-1) @ classes.class_emb.T  # [B, C]
        out = ScoreOutput(
            logits=scale * prompt, terms={"video_text": prompt}, video_emb=video_emb,
            frame_tokens=video.frames, logit_scale=scale,
        )
        cfg = self.cfg
        if cfg.use_su and classes.unit_emb.shape[0] > 0:
            out.su = select_units(self.unit_tokens(video), classes.unit_emb, cfg.su_top_k, cfg.su_temperature)
            units = self._class_unit_scores(out.su.video_scores, classes.class_unit_mask)
            # a class without units is scored by its prompt alone
            units = torch.where(torch.isnan(units), prompt, units)
            out.terms["su"] = units
            out.logits = scale * 0.5 * (prompt + units)
        if explain:
            self._explain(video, classes, out)
        return out

    def _class_unit_scores(self, unit_scores: torch.Tensor, class_units: torch.Tensor) -> torch.Tensor:
        """Mean of each class's top-k unit scores: [B, U], [C, U] -> [B, C] (NaN: no units)."""
        k = min(self.cfg.su_top_k, int(class_units.sum(1).max()))
        if k == 0:
            return unit_scores.new_full((unit_scores.shape[0], class_units.shape[0]), float("nan"))
        per_class = unit_scores[:, None, :].masked_fill(~class_units[None], float("-inf"))
        top = per_class.topk(k, dim=-1).values  # [B, C, k]
        valid = torch.isfinite(top)
        return top.where(valid, 0.0).sum(-1) / valid.sum(-1)

    def _explain(self, video: VideoFeatures, classes: ClassFeatures, out: ScoreOutput) -> None:
        """Dense maps of the selected SUs and triplet scores of the top classes' KG edges."""
        if out.su is not None:
            units = classes.unit_emb[out.su.indices]
            out.unit_maps = dense_maps(video.patches, video.grid, units, self.cfg.map_temperature)
        if self.triplet is not None and classes.triple_heads is not None:
            top = {classes.names[c] for c in out.logits.argmax(dim=1).tolist()}
            index = [e for e, (head, _, _) in enumerate(classes.triples) if head in top]
            if not index:  # the top classes have no KG edges
                return
            out.edge_index = torch.tensor(index, dtype=torch.long, device=classes.triple_heads.device)
            out.edge_scores = self.edge_plausibility(classes, index).to(classes.triple_heads.device)

    @torch.no_grad()
    def edge_plausibility(self, classes: ClassFeatures, index: list[int]) -> torch.Tensor:
        """The triplet encoder's plausibility of the KG edges ``index`` of ``classes``, both
        directions averaged: [len(index)].

        An edge's score depends on its texts and the encoder's weights only, not on the clip:
        it is kept in ``classes`` and computed once per label set, not on every prediction (for
        a Kinetics-400 class's 19 edges, 38 passes of the encoder). Kept scores are dropped when
        the encoder's weights change (an optimiser step or a load bumps their versions)."""
        version = tuple(p._version for p in self.triplet.parameters())
        if classes.kept_edge_version != version:
            classes.kept_edge_scores, classes.kept_edge_version = {}, version
        todo = [e for e in dict.fromkeys(index) if e not in classes.kept_edge_scores]
        if todo:
            rows = torch.tensor(todo, dtype=torch.long, device=classes.triple_heads.device)
            heads, tails = classes.triple_heads[rows], classes.triple_tails[rows]
            fwd, inv = self.triplet.both_directions(heads, classes.triple_relations[rows], tails)
            classes.kept_edge_scores.update(zip(todo, (0.5 * (fwd + inv)).float().tolist()))
        return torch.tensor([classes.kept_edge_scores[e] for e in index])

    def text_maps(self, video: VideoFeatures, texts: torch.Tensor) -> torch.Tensor:
        """Where given text embeddings [B, K, D] are in each frame: [B, T, K, H', W']."""
        return dense_maps(video.patches, video.grid, texts, self.cfg.map_temperature)

    def forward(self, images: torch.Tensor, classes: ClassFeatures) -> ScoreOutput:
        """encode_video + score, without the explanation extras (training)."""
        return self.score(self.encode_video(images), classes, explain=False)
