"""`TrainConfig`: one YAML file describes a whole training run.

A config file holds up to five sections (``model``, ``data``, ``protocol``, ``optim``,
``run``), each mapped onto a dataclass whose defaults are the source papers' settings
(ViT-B/16, AdamW lr 1e-5 with 10x on new modules, weight decay 0.2, 5 warmup epochs then
cosine). A file may start from another with ``base: other.yaml`` (path relative to the file);
``--opts section.key=value`` overrides are parsed as YAML scalars. Every key is checked
before anything runs: a typo fails at once, naming the key and the keys that exist.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from kgclip_core.errors import ConfigError
from kgclip_core.model.config import ModelConfig

PROTOCOLS = ("supervised", "few_shot", "zero_shot", "base_to_novel")
AMP_MODES = ("auto", "bf16", "fp16", "none")


@dataclass
class DataConfig:
    """Where the videos and their labels are.

    List files are ``relative/path label_index`` lines (mmaction2 / X-CLIP) or a CSV with a
    ``path,label`` header; a path may be a video file or a folder of frame images. ``labels``
    is a built-in label set name, a ``id,name`` CSV, or a text file with one class per line.
    """

    train_list: str = ""
    val_list: str = ""
    video_root: str = ""
    val_video_root: str = ""  # when validation videos live elsewhere (Kinetics); default video_root
    labels: str = ""
    short_side: int = 256  # decode size; crops are taken from it at the model's image size
    test_clips: int = 1  # temporal views per video at evaluation
    test_crops: int = 1  # spatial crops per view at evaluation: 1 (centre) or 3
    # Random horizontal flips when training; off where left and right differ (synthetic data).
    flip: bool = True
    num_workers: int = 8


@dataclass
class ProtocolConfig:
    """Which evaluation protocol of the papers to follow.

    ``few_shot`` and ``base_to_novel`` draw ``shots`` training videos per class,
    deterministically from ``seed``; ``zero_shot`` trains on ``data`` and evaluates on the
    ``target_*`` list and label set; ``base_to_novel`` trains on the first half of the classes
    and evaluates on both halves.
    """

    name: str = "supervised"
    shots: int = 0
    seed: int = 0
    target_list: str = ""
    target_labels: str = ""
    target_video_root: str = ""


@dataclass
class OptimConfig:
    """Optimiser, schedule and numerics; ``batch_size`` is per process."""

    epochs: int = 30
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 1e-5
    new_module_lr_mult: float = 10.0
    weight_decay: float = 0.2
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-8
    warmup_epochs: float = 5.0
    clip_grad_norm: float = 1.0
    amp: str = "auto"  # auto: bf16 on GPUs that support it, else fp16; none on CPU
    grad_checkpointing: bool = False
    freeze_backbone: bool = False


@dataclass
class RunConfig:
    """Bookkeeping that does not change what is learned (left out of the resume check)."""

    output_dir: str = "runs/default"
    seed: int = 0
    device: str = "auto"
    log_every: int = 10
    eval_every: int = 1  # epochs between evaluations; 0 evaluates only after the last epoch
    save_every_steps: int = 0  # extra `last` checkpoints inside an epoch; 0: only at epoch ends
    resume: bool = True  # continue from output_dir/checkpoints/last.pt when it exists
    allow_random_weights: bool = False  # needed when model.pretrained is null (tests, smoke runs)
    progress: bool = True


@dataclass
class TrainConfig:
    """A whole training run: model, data, protocol, optimisation and bookkeeping."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values no run could use."""
        p, o, d = self.protocol, self.optim, self.data
        if p.name not in PROTOCOLS:
            raise ConfigError(f"protocol.name must be one of {', '.join(PROTOCOLS)}, got {p.name!r}.")
        if p.name in ("few_shot", "base_to_novel") and p.shots < 1:
            raise ConfigError(f"protocol.shots must be >= 1 for the {p.name} protocol, got {p.shots}.")
        if p.name == "zero_shot" and not (p.target_list and p.target_labels):
            raise ConfigError("The zero_shot protocol needs protocol.target_list and protocol.target_labels.")
        if o.amp not in AMP_MODES:
            raise ConfigError(f"optim.amp must be one of {', '.join(AMP_MODES)}, got {o.amp!r}.")
        for name in ("epochs", "batch_size", "grad_accum"):
            if int(getattr(o, name)) < 1:
                raise ConfigError(f"optim.{name} must be >= 1, got {getattr(o, name)}.")
        if o.lr <= 0:
            raise ConfigError(f"optim.lr must be > 0, got {o.lr}.")
        if d.test_crops not in (1, 3):
            raise ConfigError(f"data.test_crops must be 1 or 3, got {d.test_crops}.")
        if d.test_clips < 1:
            raise ConfigError(f"data.test_clips must be >= 1, got {d.test_clips}.")
        if not isinstance(d.flip, bool):
            raise ConfigError(f"data.flip must be true or false, got {d.flip!r}.")

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML/JSON-able)."""
        out = asdict(self)
        out["optim"]["betas"] = list(self.optim.betas)
        return out

    def learning_fields(self) -> dict[str, Any]:
        """The part of the config that decides what is learned: a resumed run must match it."""
        out = self.to_dict()
        del out["run"]
        del out["data"]["num_workers"]
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """A config file with its ``base:`` chain merged in (the file's own keys win)."""
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"Config {path} inherits from itself through 'base:'.")
    if not path.is_file():
        raise ConfigError(f"Config file {str(path)!r} does not exist; see configs/ for the shipped ones.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"Config file {path} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path} must hold a mapping of sections.")
    base = data.pop("base", None)
    if base is None:
        return data
    return _merge(_read_yaml(path.parent / base, seen + (path,)), data)


def _set_dotted(tree: dict, key: str, raw: str) -> None:
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"--opts {key}={raw}: the value is not a valid YAML scalar ({err}).") from err
    *parents, leaf = key.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--opts {key}: {part!r} is a value, not a section.")
    node[leaf] = value


def parse_opts(opts: list[str]) -> dict:
    """``["optim.lr=1e-4", "run.output_dir=x"]`` -> nested dict of YAML-typed values."""
    tree: dict = {}
    for item in opts:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--opts entries look like section.key=value, got {item!r}.")
        _set_dotted(tree, key.strip(), raw.strip())
    return tree


SECTIONS = {"model": ModelConfig, "data": DataConfig, "protocol": ProtocolConfig,
            "optim": OptimConfig, "run": RunConfig}


def _unknown_keys(section: str, data: dict, known: set[str]) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        names = ", ".join(repr(f"{section}.{k}" if section else k) for k in unknown)
        raise ConfigError(f"Unknown config key(s) {names}; known keys here: {', '.join(sorted(known))}.")


def _coerce(name: str, defaults: Any, data: dict) -> dict:
    """Fix what YAML 1.1 gets wrong for us: ``1e-5`` is a string to it, lists stand for tuples."""
    out = {}
    for key, value in data.items():
        default = getattr(defaults, key, None)
        if isinstance(default, float) and isinstance(value, str):
            try:
                value = float(value)
            except ValueError as err:
                raise ConfigError(f"{name}.{key} must be a number, got {value!r}.") from err
        elif isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        out[key] = value
    return out


def _build_section(name: str, data: Any) -> Any:
    cls = SECTIONS[name]
    if not isinstance(data, dict):
        raise ConfigError(f"Config section {name!r} must be a mapping, got {data!r}.")
    if cls is ModelConfig:
        try:
            return ModelConfig.from_dict(_coerce(name, ModelConfig(), data))
        except ConfigError as err:
            raise ConfigError(f"In section 'model': {err}") from err
    _unknown_keys(name, data, {f.name for f in fields(cls)})
    try:
        return cls(**_coerce(name, cls(), data))
    except TypeError as err:
        raise ConfigError(f"Malformed config section {name!r}: {err}") from err


def config_from_dict(data: dict) -> TrainConfig:
    """Build and validate a :class:`TrainConfig` from a nested dict."""
    if not isinstance(data, dict):
        raise ConfigError("A training config must be a mapping of sections.")
    _unknown_keys("", data, set(SECTIONS))
    return TrainConfig(**{name: _build_section(name, value) for name, value in data.items()})


def load_config(path: str | Path, opts: list[str] | None = None) -> TrainConfig:
    """Read a YAML config (with its ``base:`` chain) and apply ``--opts`` overrides."""
    data = _merge(_read_yaml(Path(path)), parse_opts(opts or []))
    return config_from_dict(data)
