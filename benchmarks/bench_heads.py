"""Cost of the KG-CLIP heads next to the CLIP backbone: parameters, FLOPs, CPU latency.

For each backbone (random weights, nothing is downloaded) and one clip of ``--frames``
frames against a label set of ``--classes`` classes and ``--units`` semantic units, prints a
markdown table with

- parameters of the image tower, the text tower and each head;
- FLOPs of one clip through the image tower and each head (torch.utils.flop_counter), the
  text side excluded: class embeddings are computed once per label set and cached;
- CPU latency of a forward pass (encode_video + score) as plain mean-pooled CLIP, with
  every head on, and with every head on but the triplet term only on a shortlist of the
  ``--shortlist`` best classes (best of ``--repeats`` runs after one warm-up).

Run: ``python benchmarks/bench_heads.py [--models ViT-B-32 ViT-B-16] [--threads 2]``
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import replace

import torch
from torch.utils.flop_counter import FlopCounterMode

from kgclip_core.model import ClassFeatures, KGClipModel, ModelConfig, build_model
from kgclip_core.model.su_select import select_units


def random_classes(dim: int, classes: int, units: int, words: int) -> ClassFeatures:
    """Class features of the right shapes; their values do not change the cost."""
    g = torch.Generator().manual_seed(0)
    norm = torch.nn.functional.normalize
    mask = torch.rand(classes, units, generator=g) < 8 / units
    return ClassFeatures(
        names=[f"class {i}" for i in range(classes)],
        class_emb=norm(torch.randn(classes, dim, generator=g), dim=-1),
        unit_texts=[f"unit {i}" for i in range(units)],
        unit_types=["object"] * units,
        unit_emb=norm(torch.randn(units, dim, generator=g), dim=-1),
        class_unit_mask=mask,
        word_tokens=torch.randn(classes, words, dim, generator=g),
        word_mask=torch.ones(classes, words, dtype=torch.bool),
    )


def flops(fn) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def rounds(fns: list, repeats: int) -> list[list[float]]:
    """Seconds of each function's call in each of ``repeats`` rounds ([function][round]), after
    one warm-up call each; the functions run one after another within a round, so a slow
    period of a shared machine falls on all of them alike."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, bucket in zip(fns, times):
            start = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - start)
    return times


def latencies(fns: list, repeats: int) -> list[float]:
    """Best-of-``repeats`` seconds per call of each function (interleaved :func:`rounds`). On a
    shared machine other processes only ever add time, so the minimum is the closest to the
    real cost (as ``timeit`` advises)."""
    return [min(bucket) for bucket in rounds(fns, repeats)]


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def measure(name: str, args) -> list[tuple[str, int, float | None]]:
    """Rows (part, parameters, FLOPs per clip), the shortlisted triplet row, latencies (s)."""
    torch.manual_seed(0)
    full = build_model(ModelConfig(backbone=name, pretrained=None, num_frames=args.frames),
                       device="cpu", use_text_cache=False)
    cfg = full.cfg
    clip = full.backbone.model
    classes = random_classes(full.backbone.embed_dim, args.classes, args.units, args.words)
    s = full.backbone.image_size
    x = torch.randn(1, args.frames, 3, s, s)

    # FLOPs in train mode under no_grad: eval mode would take PyTorch's fused transformer
    # fast path, whose kernels the FLOP counter does not see. No module here uses dropout.
    full.train()
    with torch.no_grad():
        video = full.encode_video(x)
        visual = torch.cat([video.frames[:, :, None], video.regions], dim=2)
        su = select_units(visual, classes.unit_emb, cfg.su_top_k, cfg.su_temperature)
        units = classes.unit_emb[su.indices]
        frame_tokens = full.decoder(video.frames, video.regions, units, su.weights)
        video_emb = frame_tokens.mean(1)
        cls, patches = full.backbone.encode_frames(x.flatten(0, 1))
        rows = [
            ("image tower (8 frames)" if args.frames == 8 else "image tower", count(clip.visual),
             flops(lambda: full.backbone.encode_frames(x.flatten(0, 1)))),
            ("text tower (once per label set)", count(clip) - count(clip.visual), None),
            (f"MRA (R={cfg.num_regions})", count(full.mra), flops(lambda: full.mra(cls, patches, video.grid))),
            (f"SU selection (U={args.units}, k={cfg.su_top_k})", 0,
             flops(lambda: select_units(visual, classes.unit_emb, cfg.su_top_k, cfg.su_temperature))),
            (f"decoder ({cfg.decoder_layers} layers)", count(full.decoder),
             flops(lambda: full.decoder(video.frames, video.regions, units, su.weights))),
            (f"WTI (C={args.classes}, L={args.words})", count(full.wti),
             flops(lambda: full.wti(classes.word_tokens, classes.word_mask, frame_tokens, video.frame_mask))),
            (f"triplet encoder (C={args.classes}, both directions)", count(full.triplet),
             flops(lambda: full.triplet.pair_scores(video_emb, "video-action", classes.class_emb))),
        ]
        short = classes.class_emb[: args.shortlist]
        shortlist_row = (f"triplet encoder (shortlist of {args.shortlist})", count(full.triplet),
                         flops(lambda: full.triplet.pair_scores(video_emb, "video-action", short)))
    full.eval()
    shortlisted = KGClipModel(replace(cfg, triplet_shortlist=args.shortlist), full.backbone).eval()
    torch.manual_seed(0)
    plain = build_model(ModelConfig.plain_clip(backbone=name, pretrained=None, num_frames=args.frames),
                        device="cpu", use_text_cache=False).eval()
    with torch.inference_mode():
        times = latencies(
            [lambda m=m: m.score(m.encode_video(x), classes, explain=False) for m in (plain, full, shortlisted)],
            args.repeats,
        )
    return rows, shortlist_row, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["ViT-B-32", "ViT-B-16"])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--classes", type=int, default=400)
    parser.add_argument("--units", type=int, default=300)
    parser.add_argument("--words", type=int, default=8)
    parser.add_argument("--shortlist", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, {args.threads} torch threads, "
          f"load average {os.getloadavg()[0]:.1f}; torch {torch.__version__}; "
          f"one clip of {args.frames} frames, {args.classes} classes\n")
    for name in args.models:
        rows, shortlist_row, (t_plain, t_full, t_short) = measure(name, args)
        backbone_flops = rows[0][2]
        print(f"### {name}\n")
        print("| part | parameters | GFLOPs per clip | FLOPs vs image tower |")
        print("|---|---:|---:|---:|")

        def line(part: str, params: int, f: float | None) -> None:
            gf = "-" if f is None else f"{f / 1e9:.3f}"
            share = "-" if f is None else f"{100 * f / backbone_flops:.2f}%"
            print(f"| {part} | {params / 1e6:.2f} M | {gf} | {share} |")

        for row in rows:
            line(*row)
        line("**all heads**", sum(p for _, p, _ in rows[2:]), sum(f for _, _, f in rows[2:]))
        line(*shortlist_row)
        line(f"**all heads, triplet shortlist {args.shortlist}**", sum(p for _, p, _ in rows[2:]),
             sum(f for _, _, f in rows[2:-1]) + shortlist_row[2])
        print(f"\nCPU latency per clip (best of {args.repeats}): plain mean-pooled CLIP "
              f"{1000 * t_plain:.0f} ms; all heads {1000 * t_full:.0f} ms; all heads with a triplet "
              f"shortlist of {args.shortlist}: {1000 * t_short:.0f} ms\n")

if __name__ == "__main__":
    main()
