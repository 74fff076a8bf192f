"""What a user of the app waits for: one clip end to end, text embedding, and cold start.

One run prints, side by side on one machine (random weights: the same compute as real ones,
nothing is downloaded), as markdown tables:

- per clip (``--repeats`` interleaved rounds after a warm-up call; the best time, and the ratio
  to the floor within each round, its median and range): decoding ``--frames`` frames;
  open_clip's ``encode_image`` of those frames (the floor every CLIP video model pays); the
  Predictor end to end (decode, encode, score, explanations) training-free and with every
  KG-CLIP head, on UCF-101 (101 classes) and Kinetics-400 (400 classes), with the triplet
  term on the default shortlist and over every class (as before the shortlist was the
  default); X-CLIP B/32 through ``transformers`` where it is installed (skipped with a note
  otherwise); each as a ratio to the floor;
- text embedding: texts per second of the text tower on UCF-101's prompts and units, over
  the full 77-token context (as the cached path ran first), trimmed in length-sorted
  batches, and trimmed with the templates' shared prefixes computed once and each batch's
  suffixes run without padding (now);
- cold start, each label set in a fresh process with an empty cache, doing what the app
  does (load the model's weights from a file, as downloaded weights are loaded, warm the
  label set up, predict): seconds from the process's start
  to its first prediction, and what the label set cost; a 10-label custom set over a warm
  prediction; the app's default case, a request for UCF-101 while Kinetics-400 warms up;
  UCF-101 once more with the cache filled ahead by ``kgclip cache`` (a Space's build step);
  and the app itself (``python app.py``) to its first UCF-101 result over HTTP.

``--device cuda`` runs the same rows on the GPU.

Run: ``python benchmarks/bench_app.py [--model ViT-B-32] [--cold ucf101 kinetics400] [--device cuda]``
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from bench_heads import cpu_name, latencies, rounds

REPO = Path(__file__).resolve().parents[1]
CLIPS = REPO.parent / "shared" / "clips"
CUSTOM = ["playing guitar", "riding a horse", "brushing teeth", "juggling balls", "swimming",
          "push ups", "knitting", "archery", "skateboarding", "rowing"]


def default_clip() -> Path:
    """A real UCF-101 clip from ../shared/clips (the tests' BaseballPitch)."""
    with open(CLIPS / "manifest.csv", newline="", encoding="utf-8") as f:
        return next(CLIPS / r["path"] for r in csv.DictReader(f) if r["label"] == "BaseballPitch")


def predictors(args):
    """Training-free, and all heads with the default shortlist and without one, on one backbone."""
    from kgclip_core.backbone import BackboneConfig, load_backbone
    from kgclip_core.model import KGClipModel, ModelConfig
    from kgclip_core.predictor import DEFAULT_TRIPLET_SHORTLIST, Predictor, PredictorConfig

    torch.manual_seed(0)
    backbone = load_backbone(BackboneConfig(args.model, None, allow_random=True, device=args.device))
    pcfg = dict(backbone=backbone.cfg, num_frames=args.frames)
    free = ModelConfig.training_free_preset(backbone=args.model, pretrained=None, num_frames=args.frames)
    heads = ModelConfig(backbone=args.model, pretrained=None, num_frames=args.frames)
    device = backbone.device
    return backbone, {
        "training-free": Predictor(KGClipModel(free, backbone), PredictorConfig(**pcfg)),
        f"all heads, triplet shortlist {DEFAULT_TRIPLET_SHORTLIST} (default)": Predictor(
            KGClipModel(heads, backbone).to(device), PredictorConfig(**pcfg)),
        "all heads, triplet over every class (before)": Predictor(
            KGClipModel(heads, backbone).to(device), PredictorConfig(**pcfg, triplet_shortlist=0)),
    }


def synced(fn, device: torch.device):
    """``fn`` that waits for the GPU, so its time is the work's, not the launch's."""
    def run():
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return run


def xclip_calls(clip: Path, frames: int, device: torch.device) -> list[tuple[str, object]]:
    """X-CLIP B/32 on random weights (its default config) over 101 and 400 classes, the class
    texts given with every call as X-CLIP's video-conditioned prompts need, as (row, call); or
    why it was skipped (the call None)."""
    try:
        from transformers import XCLIPConfig, XCLIPModel
    except ImportError:
        return [("X-CLIP B/32: skipped, `transformers` is not installed", None)]
    from kgclip_core.video import read_clip

    cfg = XCLIPConfig()
    cfg.vision_config.num_frames = frames
    model = XCLIPModel(cfg).to(device).eval()
    video = read_clip(clip, frames, short_side=256).frames[0]
    pixels = torch.nn.functional.interpolate(
        torch.as_tensor(video).permute(0, 3, 1, 2).float(), size=(224, 224))[None].to(device)
    sizes = (101, 400)
    ids = {n: torch.randint(0, cfg.text_config.vocab_size, (n, 8), device=device) for n in sizes}
    return [(f"X-CLIP B/32, {n} classes (transformers, {frames} frames)",
             synced(lambda n=n: model(input_ids=ids[n], pixel_values=pixels), device)) for n in sizes]


def per_clip_rows(args, clip: Path) -> list[tuple[str, float | None, tuple[float, float, float] | None]]:
    """(row, best seconds, the ratio to the floor within each round: median, lowest, highest).

    Every call, X-CLIP's included, runs in the same interleaved rounds, so each round gives a
    ratio of two calls a few seconds apart: a machine whose speed drifts during the run moves
    the best-of times of different rows apart, and these paired ratios much less."""
    from kgclip_core.video import read_clip

    backbone, preds = predictors(args)
    frames = read_clip(clip, args.frames, short_side=256).frames[0]
    images = backbone.preprocess(frames)
    device = backbone.device
    rows = [
        (f"decode {args.frames} frames", lambda: read_clip(clip, args.frames, short_side=256)),
        (f"open_clip encode_image, {args.frames} frames (the floor)",
         synced(lambda: backbone.model.encode_image(images), device)),
    ]
    for labels, size in (("ucf101", 101), ("kinetics400", 400)):
        for name, p in preds.items():
            if name == "training-free" and size == 400:
                continue  # its scoring is a matrix product: 101 or 400 classes cost the same
            p.classes(p.resolve_labels(labels))
            rows.append((f"Predictor, {name}, {size} classes", lambda p=p, labels=labels: p.predict(clip, labels)))
    rows += xclip_calls(clip, args.frames, device)
    timed = [(name, fn) for name, fn in rows if fn is not None]
    with torch.inference_mode():
        times = dict(zip([name for name, _ in timed], rounds([fn for _, fn in timed], args.repeats)))
    floor = times[rows[1][0]]
    out = []
    for name, _ in rows:
        if name not in times:
            out.append((name, None, None))
            continue
        ratios = sorted(t / f for t, f in zip(times[name], floor))
        out.append((name, min(times[name]), (statistics.median(ratios), ratios[0], ratios[-1])))
    return out


def text_rows(args) -> list[tuple[str, float]]:
    """Texts per second on UCF-101's prompts and units: over the 77-token context (a fixed
    sample: it is slow), trimmed, and with shared prefixes and unpadded suffixes (all of them)."""
    from kgclip_core.backbone import BackboneConfig, load_backbone
    from kgclip_core.class_inputs import class_inputs
    from kgclip_core.kg.graph import KnowledgeGraph
    from kgclip_core.labels import load_label_set

    labels = load_label_set("ucf101")
    inputs = class_inputs(labels, KnowledgeGraph.for_label_set(labels))
    texts = [p for prompts in inputs.prompts for p in prompts] + inputs.unit_texts
    sample = texts[:: max(1, len(texts) // args.text_sample)][: args.text_sample]
    backbone = load_backbone(BackboneConfig(args.model, None, allow_random=True, device=args.device,
                                            use_text_cache=False))

    def embed(texts: list[str], trim: bool, share: bool):
        def run():
            backbone.cfg = replace(backbone.cfg, share_text_prefixes=share)
            backbone._text_outputs(texts, "eot", trim)
        return synced(run, backbone.device)

    # One timed run after the warm-up: the 77-token context takes tens of seconds on a CPU.
    with torch.inference_mode():
        times = latencies([embed(sample, False, False), embed(texts, True, False), embed(texts, True, True)], 1)
    return [(f"text tower, 77-token context (before), {len(sample)} of UCF-101's texts", len(sample) / times[0]),
            (f"text tower, trimmed, length-sorted batches, UCF-101's {len(texts):,} texts", len(texts) / times[1]),
            (f"text tower, trimmed, shared prefixes, unpadded suffixes (now), UCF-101's {len(texts):,} texts",
             len(texts) / times[2])]


def first_result(args) -> None:
    """Child process: what the app does from its start (load, warm up: embed a label set,
    load the label parser), then a prediction over ``args.first_result``; prints times as JSON.

    The warm-up's label set is ``args.warm``, else the predicted one (so the prediction
    waits for it, as a request for the warmed set does).
    """
    from kgclip_core.backbone import BackboneConfig
    from kgclip_core.predictor import Predictor, PredictorConfig
    from kgclip_core.warmup import Warmup

    cfg = PredictorConfig(backbone=BackboneConfig(args.model, args.weights, device=args.device), num_frames=args.frames)
    predictor = Predictor.from_config(cfg)
    loaded = time.time()
    labels = predictor.resolve_labels(args.first_result)
    warmup = Warmup([(predictor, predictor.resolve_labels(args.warm or args.first_result))]).start()
    texts, embedded = [0], [loaded]

    def progress(done: int, total: int) -> None:
        texts.append(total)
        embedded[0] = time.time()

    # As the app's first request: the prediction waits for the label set (the warm-up's, or
    # its own), and encodes the clip meanwhile.
    predictor.predict(args.clip, labels, progress=progress)
    first = time.time()
    embedded = embedded[0]
    warmup.join()
    warm_start = time.time()
    predictor.predict(args.clip, labels)
    warm = time.time() - warm_start
    custom_start = time.time()
    predictor.predict(args.clip, CUSTOM)
    custom = time.time() - custom_start
    # Waiting for the warm-up, this caller may have seen no total: the warm-up's is the same.
    texts = max(texts) if args.warm != args.first_result else warmup.jobs[0].total
    print(json.dumps({"loaded": loaded, "embedded": embedded, "first": first, "texts": texts,
                      "warmed": loaded + warmup.jobs[0].seconds, "warm": warm, "custom": custom}))


def weights_file(args, folder: str) -> str:
    """Random weights for ``args.model`` saved as an open_clip weights file in ``folder``: the
    cold start loads them as a user's downloaded weights are loaded (the download not counted).
    As safetensors, the format open_clip fetches from the Hugging Face hub where a model has it
    (``open_clip_model.safetensors``, as ViT-B-32's OpenAI weights do); a pickled ``.pt`` takes
    about 1.9 s longer to read on our CPU."""
    import open_clip
    from safetensors.torch import save_file

    path = os.path.join(folder, f"{args.model}-random.safetensors")
    torch.manual_seed(0)
    save_file({k: v.contiguous() for k, v in open_clip.create_model(args.model).state_dict().items()}, path)
    return path


def cold(args, labels: str, warm: str | None = None, prefilled: bool = False) -> tuple[float, dict]:
    """Run the cold-start child in a fresh process and an empty cache folder, or (``prefilled``)
    one that ``kgclip cache`` filled with the label set beforehand, as a Space's build step can."""
    with tempfile.TemporaryDirectory() as cache:
        if prefilled:
            subprocess.run([sys.executable, "-m", "kgclip_core.cli", "cache", "--labels", labels, "--model", args.model,
                            "--pretrained", args.weights, "--device", args.device, "--cache-dir", cache],
                           capture_output=True, text=True, check=True)
        start = time.time()
        out = subprocess.run(
            [sys.executable, __file__, "--first-result", labels, "--warm", warm or labels, "--model", args.model,
             "--weights", args.weights, "--device", args.device, "--frames", str(args.frames),
             "--clip", str(args.clip), "--threads", str(args.threads)],
            env={**os.environ, "KGCLIP_CACHE_DIR": cache}, capture_output=True, text=True, check=True)
    return start, json.loads(out.stdout.strip().splitlines()[-1])


def app_row(args) -> tuple[str, float, str]:
    """``python app.py`` on the weights file with UCF-101 as its label set, in an empty cache:
    seconds from launch to the first UCF-101 result over HTTP (as a browser's request),
    gradio's own start-up included."""
    from bench_soak import start_app
    from gradio_client import Client, handle_file

    with tempfile.TemporaryDirectory() as work:
        env = {**os.environ, "KGCLIP_CACHE_DIR": f"{work}/cache", "GRADIO_TEMP_DIR": f"{work}/gradio"}
        with open(f"{work}/app.log", "w") as log:
            start = time.time()
            app, url = start_app(["--model", args.model, "--pretrained", args.weights, "--labels", "ucf101",
                                  "--frames", str(args.frames), "--device", args.device], env, log, poll_s=0.2)
            try:
                up = time.time()
                Client(url, verbose=False).predict(handle_file(str(args.clip)), "ucf101", "", 3, 0.5,
                                                   api_name="/predict")
                first = time.time()
            finally:
                app.terminate()
                app.wait(timeout=60)
    return ("the app (`python app.py --labels ucf101`), first result over HTTP", first - start,
            f"server answering at {up - start:.1f} s")


def cold_rows(args) -> list[tuple[str, float, str]]:
    """Each label set in a fresh process; then UCF-101 asked for while Kinetics-400 warms up."""
    rows = []
    for labels in args.cold:
        start, r = cold(args, labels)
        rows.append((f"first result on {labels}", r["first"] - start,
                     f"model loaded at {r['loaded'] - start:.1f} s; label set ready at {r['embedded'] - start:.1f} s "
                     f"({r['texts']:,} texts in {r['embedded'] - r['loaded']:.1f} s)"))
    if args.cold:
        rows.append(("10-label custom set, over a warm prediction", r["custom"] - r["warm"],
                     f"warm prediction {r['warm']:.2f} s, with a new custom set {r['custom']:.2f} s"))
    if {"ucf101", "kinetics400"} <= set(args.cold):
        start, r = cold(args, "ucf101", warm="kinetics400")
        rows.append(("app start warming kinetics400, first result on ucf101", r["first"] - start,
                     f"kinetics400 warm-up done at {r['warmed'] - start:.1f} s"))
    if "ucf101" in args.cold:
        start, r = cold(args, "ucf101", prefilled=True)
        rows.append(("first result on ucf101, cache filled ahead by `kgclip cache` (a Space's build step)",
                     r["first"] - start, f"model loaded at {r['loaded'] - start:.1f} s"))
        rows.append(app_row(args))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--clip", type=Path, default=None, help="default: a UCF-101 clip of ../shared/clips")
    parser.add_argument("--text-sample", type=int, default=256, help="texts timed in the text-embedding rows")
    parser.add_argument("--cold", nargs="*", default=["synthetic", "kinetics_tps24", "hmdb51", "ucf101", "kinetics400"],
                        help="label sets to cold-start, each in a fresh process (none: skip)")
    parser.add_argument("--tables", nargs="+", choices=["clip", "text", "cold"], default=["clip", "text", "cold"],
                        help="which tables to measure (default: all three)")
    parser.add_argument("--first-result", default=None, help=argparse.SUPPRESS)  # the cold-start child
    parser.add_argument("--warm", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--weights", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.clip = args.clip or default_clip()
    if args.first_result:
        return first_result(args)
    # The in-process rows get a cache folder of their own: nothing of the user's is read or filled.
    cache = tempfile.TemporaryDirectory(prefix="bench-app-")  # removed when main returns
    os.environ["KGCLIP_CACHE_DIR"] = cache.name
    device = "GPU " + torch.cuda.get_device_name() if args.device.startswith("cuda") else cpu_name()
    print(f"machine: {device}, {os.cpu_count()} cores, {args.threads} torch threads, load average "
          f"{os.getloadavg()[0]:.1f}; torch {torch.__version__}; {args.model}, random weights, "
          f"{args.frames} frames of {args.clip.name}\n")
    if "clip" in args.tables:
        rows = per_clip_rows(args, args.clip)
        floor = rows[1][1]
        print(f"| per clip ({args.repeats} interleaved rounds) | best, seconds | best / the floor's best "
              "| vs the floor in each round: median (lowest-highest) |\n|---|---:|---:|---:|")
        for name, t, ratio in rows:
            if t is None:
                print(f"| {name} | - | - | - |")
                continue
            mid, low, high = ratio
            print(f"| {name} | {t:.3f} | {t / floor:.2f}x | {mid:.2f}x ({low:.2f}-{high:.2f}) |")
    if "text" in args.tables:
        print("\n| text embedding | texts per second |\n|---|---:|")
        for name, rate in text_rows(args):
            print(f"| {name} | {rate:.0f} |")
    if "cold" in args.tables and args.cold:
        with tempfile.TemporaryDirectory() as folder:
            args.weights = weights_file(args, folder)
            print("\n| cold start (fresh process, empty cache, weights from a file) | seconds | |\n|---|---:|---|")
            for name, t, note in cold_rows(args):
                print(f"| {name} | {t:.1f} | {note} |")


if __name__ == "__main__":
    main()
