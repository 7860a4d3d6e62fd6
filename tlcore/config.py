"""Run settings as typed dataclasses. The CLI flags and the app's forms are both built from these fields."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

from tlcore.errors import ConfigError
from tlcore.recipe import setting
from tlcore.tasks import DEFAULT_TASK, get_task, task_names

MODALITIES = ("image", "text", "audio")
TASKS = task_names()   # the registered tasks, read from the registry (tlcore/tasks/__init__.py)
BASELINES = ("scratch", "knn", "classical")
#: The baselines that use no pretrained weights: what "does transfer help?" is measured against.
NO_PRETRAINING = ("scratch", "classical")
AUGMENT_LEVELS = ("none", "light", "standard")   # training-time image augmentation, see tlcore/models/image.py
MIN_VAL_ITEMS = setting("min_val_items")   # fewest validation items loop models stop early on (tlcore/recipe.py)

#: The limits of every numeric option, in one place: the config fields below carry them as ``min``/``max`` metadata,
#: and the options that are not config fields (the CLI's ``predict --top-k``, ``cluster --k``, ``curve --seeds`` ...,
#: the API's keyword arguments) are checked against the same entries with :func:`check_option`.
LIMITS: dict[str, dict] = {
    "seed": {"min": 0, "max": 2**32 - 1},
    "epochs": {"min": 1, "max": 500},
    "batch_size": {"min": 1, "max": 1024},
    "lr": {"min": 1e-12, "max": 1.0},
    "eval_fraction": {"min": 0.05, "max": 0.9},
    "partial_blocks": {"min": 1, "max": 48},
    "lora_r": {"min": 1, "max": 256},
    "layer_decay": {"min": 0.05, "max": 1.0},
    "patience": {"min": 1, "max": 100},
    "val_fraction": {"min": 0.0, "max": 0.5},
    "max_per_class": {"min": 1, "max": 1_000_000},
    "top_k": {"min": 1, "max": 1000},           # predict: classes listed per input (capped at the run's classes)
    "k": {"min": 2, "max": 50},                 # cluster: number of clusters (and at most the number of items)
    "max_items": {"min": 10, "max": 50_000},    # cluster: items sampled
    "seeds": {"min": 1, "max": 10},             # fine-tuning: training seeds; curve: seeds per point
    "tune": {"min": 0, "max": 50},              # fine-tuning: tuning trials per trained network (0 = defaults)
    "shots": {"min": 0, "max": 100_000},        # curve: labeled examples per class of one point (0 = all)
    "budget": {"min": 1, "max": 1000},          # label-next: items ranked to label next
    "max_gb": {"min": 0.0, "max": 1e6},         # gc: a cache cap in GB, fractions allowed (0 = evict everything)
    "store_features_max_gb": {"min": 0.0, "max": 1e6},   # gc: the artifact store's shared features cap in GB
    "num_workers": {"min": 0, "max": 64},       # DataLoader worker processes (preprocessing beside the model)
    "num_processes": {"min": 1, "max": 1024},   # training processes (Accelerate / torch.distributed)
}
DEVICES = ("auto", "cpu", "cuda", "mps")
TRACKERS = ("none", "mlflow", "tensorboard")   # experiment tracking backends, see tlcore/reporting/tracking.py
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def config_field(default: Any, help: str, **kw: Any) -> Any:
    """A config field with its help text and metadata: what the CLI, the forms and :func:`settings_problem` read.

    Metadata: ``choices``; ``min``/``max`` (a :data:`LIMITS` entry); ``choices_list`` (a list's allowed items);
    ``required=True`` (None or "" is refused: the setting has no usable default); ``flag`` (the option's name on the
    command line and in messages when it is not the field's name, e.g. a field that would shadow a method)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class FinetuneConfig:
    """Everything one fine-tuning run needs. ``out`` is the run folder."""

    modality: str = config_field("text", "Data modality: image, text or audio.", choices=MODALITIES)
    out: str = config_field("", "Run folder to write (model, report.json, README.md, checkpoints).")
    target: Optional[str] = config_field(None, "Labeled target data (folder, .zip or table). Part is held out for eval unless --eval is given.")
    source: Optional[str] = config_field(None, "Labeled source-domain data (optional); the source-trained model is 'before'.")
    unlabeled: Optional[str] = config_field(None, "Unlabeled target-domain data (for domain adaptation).")
    eval: Optional[str] = config_field(None, "Labeled held-out target data for before/after evaluation.")
    task: str = config_field(DEFAULT_TASK, "Task: " + ", ".join(f"{t.name} ({t.description})" for t in map(get_task, TASKS))
                   + ".", choices=TASKS)
    backbone: Optional[str] = config_field(None, "Backbone name from `python -m tlcore backbones` or a Hugging Face model id; default per modality.")
    strategy: str = config_field("linear_probe", "Transfer strategy: linear_probe, partial, full, lora.")
    epochs: int = config_field(10, "Training epochs (upper bound; early stopping may end sooner).", **LIMITS["epochs"])
    batch_size: int = config_field(16, "Mini-batch size for fine-tuning.", **LIMITS["batch_size"])
    lr: Optional[float] = config_field(None, "Learning rate (of the top block with --layer-decay); default depends on the strategy "
                             "and modality.", **LIMITS["lr"])
    seed: int = config_field(0, "Random seed: same seed, same data, same result.", **LIMITS["seed"])
    tune: int = config_field(0, "Tuning trials per network trained in a loop (the fine-tuned model and the scratch twin "
                             "alike): the lr is searched with Optuna on part of the training items, never the eval "
                             "split; 0 = the documented defaults. The probe's and the classical model's C are "
                             "cross-validated either way.", **LIMITS["tune"])
    seeds: int = config_field(1, "Training seeds: train 'after' and every trained baseline with seeds seed, seed+1, ... on "
                              "the same split; the report gives each seed's numbers and a verdict whose interval covers "
                              "seed and eval-sample noise (the saved model is the first seed's).", **LIMITS["seeds"])
    eval_fraction: float = config_field(0.3, "Share of the labeled target held out for evaluation when --eval is not given.", **LIMITS["eval_fraction"])
    partial_blocks: int = config_field(2, "partial: number of top backbone blocks to unfreeze.", **LIMITS["partial_blocks"])
    lora_r: int = config_field(8, "lora: rank of the low-rank update.", **LIMITS["lora_r"])
    layer_decay: float = config_field(setting("layer_decay"), "partial/full: discriminative learning rates; each backbone block trains at this factor "
                            "of the lr of the block above it (1 = the same lr everywhere). Default "
                            f"{setting('layer_decay')}: chosen on development data (tlcore/recipe.py).", **LIMITS["layer_decay"])
    augment: str = config_field(setting("augment"), "Image fine-tuning (partial, full, lora): augment the training batches: none, light or "
                      "standard (random resized crop, small rotation and shift, colour jitter; no flips). Never applied "
                      "to eval, validation or the linear probe's features; text and audio runs ignore it. Default "
                      f"{setting('augment')}: chosen on development data (tlcore/recipe.py).",
                      choices=AUGMENT_LEVELS)
    augment_flip: bool = config_field(False, "Image fine-tuning: also flip training images left-right at random; only for data "
                            "whose labels survive mirroring (not digits, letters or arrows).")
    patience: int = config_field(3, "Early stopping: epochs without validation improvement before stopping.", **LIMITS["patience"])
    val_fraction: float = config_field(0.15, "Share of the training data used for early stopping (never the eval split); partial, "
                             f"full and lora stop early only when it holds at least {MIN_VAL_ITEMS} items, else they train the "
                             "whole schedule on all training data.", **LIMITS["val_fraction"])
    max_per_class: Optional[int] = config_field(None, "Use at most this many labeled target training examples per class.",
                                      **LIMITS["max_per_class"])
    exclude: Optional[str] = config_field(None, "A CSV of target training items to leave out: a 'name' column (the "
                                          "audit's --csv file); its reasons are recorded in the report. Only "
                                          "training items are removed: the eval split is never changed.")
    baselines: list = config_field(["scratch", "knn", "classical"], "Baselines to compute: scratch (the backbone's "
                                   "random-init twin, same items and validation rule), knn (k-NN on the pretrained "
                                   "features), classical (no pretrained weights: TF-IDF, HOG or MFCC features + "
                                   "logistic regression). A task computes those it has.", choices_list=BASELINES)
    adapt_backbone: bool = config_field(False, "Domain adaptation (dann, deep_coral, mcc): train the whole backbone end to end with "
                              "the alignment loss, not only an MLP head on frozen features (slower; uses epochs and lr).")
    device: str = config_field("auto", "Where networks run: auto (CUDA if torch sees a GPU, then Apple MPS, else the CPU), cpu, "
                     "cuda or mps.", choices=DEVICES)
    precision: str = config_field("auto", "Numeric precision of forward passes: auto (bf16 on a GPU that supports it, else fp16 "
                        "with loss scaling on CUDA; fp32 on the CPU), fp32, bf16 or fp16 (CUDA only).",
                        choices=PRECISIONS)
    num_workers: Optional[int] = config_field(None, "DataLoader worker processes that decode, resize and augment inputs beside "
                                    "the model; default from the core count (0 on 2 cores, else up to 4).",
                                    **LIMITS["num_workers"])
    num_processes: int = config_field(1, "Training processes (data parallel through Hugging Face Accelerate; one per GPU, gloo "
                            "on the CPU). The CLI launches them itself; under `accelerate launch` the launcher's count "
                            "is used.", **LIMITS["num_processes"])
    on_bad_file: str = config_field("skip", "What to do with unreadable files: skip (listed in the report) or refuse.", choices=("skip", "refuse"))
    track: str = config_field("none", "Experiment tracking once the run is complete: none; mlflow (the MLflow server at "
                              "MLFLOW_TRACKING_URI, experiment MLFLOW_EXPERIMENT_NAME or the data set's name; the "
                              "config as parameters, per-epoch curves, before/after/baseline metrics with their 95% "
                              "intervals, report.json and the model card as artifacts); tensorboard (the same as event "
                              "files in RUN/tensorboard/). A tracking failure never fails the run: it is a warning in "
                              "the report.", choices=TRACKERS)

    def validate(self, *, need_out: bool = True) -> "FinetuneConfig":
        """Refuse settings no run can use, with one message that says what to change. The CLI and the app's
        form both call this, so they refuse exactly the same values with the same words. Returns ``self``."""
        problem = settings_problem(self)
        if problem:
            raise ConfigError(problem)
        if need_out and not self.out:
            raise ConfigError("no run folder given: pass --out RUN_DIR")
        if not isinstance(self.baselines, (list, tuple)) or not all(isinstance(b, str) for b in self.baselines):
            raise ConfigError(f"baselines must be a list of names ({', '.join(BASELINES)}); got {self.baselines!r}")
        unknown = sorted(set(self.baselines) - set(BASELINES))
        if unknown:
            raise ConfigError(f"unknown baseline(s) {unknown}; choose from {', '.join(BASELINES)} (or none)")
        task = get_task(self.task)
        task.check_modality(self.modality)
        if self.tune and not task.tune:
            tunable = [t.description for t in map(get_task, TASKS) if t.tune]
            raise ConfigError(f"--tune {self.tune}: tuning trials are available for {', '.join(tunable)}, not for "
                              f"{task.description}; set --lr to try a learning rate")
        if self.seeds > 1 and not task.seeds:
            several = [t.description for t in map(get_task, TASKS) if t.seeds]
            raise ConfigError(f"--seeds {self.seeds}: several training seeds in one run are available for "
                              f"{', '.join(several)}, not for {task.description}; run once per --seed instead")
        _check_strategy(self, task.strategies)
        if self.exclude and not getattr(task.part("pipeline"), "EXCLUDES_ITEMS", False):
            raise ConfigError(f"--exclude leaves listed training items out of a run; {task.description} runs do not "
                              "take it in this version: drop --exclude")
        task.part("pipeline").check_config(self)
        from tlcore.device import resolve_device, resolve_precision

        device = resolve_device(self.device)
        resolve_precision(self.precision, device)   # refuses a device this machine lacks
        _check_processes(self.num_processes, device)
        _check_out_outside_data(self)
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FinetuneConfig":
        return settings_from_dict(cls, data, "a fine-tuning run")


def field_help(cls: type) -> dict[str, dict]:
    """Field name -> {'help', 'default', 'type', choices/min/max...}: what the CLI and app forms are built from."""
    out = {}
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        out[f.name] = {"default": default, "type": f.type, **f.metadata}
    return out


def option_name(name: str, meta: Any) -> str:
    """How a field is named on the command line (without the dashes) and in every message about it."""
    return meta.get("flag") or name.replace("_", "-")


def _field_problem(name: str, value: Any, meta: Any) -> Optional[str]:
    """What is wrong with one field's value per its metadata (type, choices, min/max), or None."""
    import math

    flag = option_name(name, meta)
    if value is None:
        return None
    if "choices" in meta and value not in meta["choices"]:
        return f"{flag} must be one of {', '.join(map(str, meta['choices']))}; got {value!r}"
    if "min" in meta or "max" in meta:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{flag} must be a number; got {value!r}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"{flag} must be a finite number; got {value!r}"
        if isinstance(meta.get("min"), int) and isinstance(meta.get("max"), int) and not float(value).is_integer():
            return f"{flag} must be a whole number; got {value!r}"
        lo, hi = meta.get("min", -math.inf), meta.get("max", math.inf)
        if not lo <= value <= hi:
            if hi == math.inf:
                return f"{flag} must be at least {_num(lo)}; got {_num(value)}"
            return f"{flag} must be between {_num(lo)} and {_num(hi)}; got {_num(value)}"
    return None


def settings_problem(cfg: Any) -> Optional[str]:
    """The first field of the config dataclass ``cfg`` whose value is missing, of the wrong type or outside its
    limits and choices (its metadata), or None: the one check behind every config's ``validate``, so the CLI, the
    API and the app's forms refuse the same values with the same words."""
    for f in dataclasses.fields(cfg):
        value, flag = getattr(cfg, f.name), option_name(f.name, f.metadata)
        kind = str(f.type).replace("typing.", "")
        if f.metadata.get("required") and (value is None or value == ""):
            choices = f.metadata.get("choices")
            return f"{flag} is required" + (f": one of {', '.join(map(str, choices))}" if choices else "")
        if value is None and not kind.startswith("Optional"):
            return f"{flag} is required"
        if value is not None and kind in ("str", "Optional[str]") and not isinstance(value, str):
            return f"{flag} must be text; got {value!r}"
        if kind == "bool" and not isinstance(value, bool):
            return f"{flag} must be true or false; got {value!r}"
        problem = _field_problem(f.name, value, f.metadata)
        if problem:
            return problem
    return None


def settings_from_dict(cls: type, data: Any, what: str) -> Any:
    """``cls(**data)`` for a mapping of setting names to values; anything else, or an unknown name, is refused."""
    names = [f.name for f in dataclasses.fields(cls)]
    if not isinstance(data, dict):
        raise ConfigError(f"{what} settings must be a mapping of names to values; got {type(data).__name__}")
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"unknown setting(s) {unknown} for {what}; known: {', '.join(names)}")
    return cls(**data)


def _num(x: Any) -> str:
    """A limit or a value as a user typed it: whole numbers in full (500, 4294967295), others short (1e-12, 0.05)."""
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) < 1e15):
        return str(int(x))
    return f"{x:g}"


def limit_text(meta: dict) -> str:
    """The allowed range of a field or option for help texts: "1..500", "≥ 1", or "" when it has none."""
    if "min" in meta and "max" in meta:
        return f"{_num(meta['min'])}..{_num(meta['max'])}"
    if "min" in meta:
        return f"≥ {_num(meta['min'])}"
    return ""


def check_option(name: str, value: Any, *, flag: Optional[str] = None) -> Any:
    """Refuse ``value`` outside the limits of option ``name`` (:data:`LIMITS`) with a :class:`ConfigError` that
    gives the allowed range; None (unset) passes. Returns ``value``. For options that are not config fields."""
    problem = _field_problem(name, value, LIMITS[name])
    if problem:
        raise ConfigError(problem.replace(name.replace("_", "-"), flag, 1) if flag else problem)
    return value


def _check_processes(n: int, device: Any) -> None:
    """Refuse more training processes than the machine has devices for: one per GPU, or one per CPU core (64
    processes on 2 cores take the machine's memory, not its time)."""
    import torch

    from tlcore.device import cpu_cores

    if device.type == "cuda":
        have, what = torch.cuda.device_count(), "GPUs"
    else:
        have, what = cpu_cores(), "CPU cores"      # the cores this process may use, as for DataLoader workers
    if n > have:
        raise ConfigError(f"--num-processes {n} is more than this machine's {have} {what}; use at most {have}")


def _check_out_outside_data(cfg: FinetuneConfig) -> None:
    """The run folder must not lie inside a data set: the run would be written into the user's data (and read
    back as data by the next run)."""
    from pathlib import Path

    if not cfg.out:
        return
    out = Path(cfg.out).expanduser().resolve()
    for role in ("target", "source", "unlabeled", "eval"):
        value = getattr(cfg, role)
        data = Path(value).expanduser().resolve() if value else None
        if data is not None and data.is_dir() and (out == data or data in out.parents):
            raise ConfigError(f"--out {cfg.out} is inside the {role} data folder {value}; write the run somewhere "
                              "else, so the data set stays as it is")


def _check_strategy(cfg: FinetuneConfig, allowed: Optional[tuple[str, ...]]) -> None:
    """The rules every task shares: the strategy is one the task takes, and a task with its own strategies says
    so. The task's own rules (which sets it needs, backbones) are its pipeline's ``check_config``."""
    if allowed is not None and cfg.strategy not in allowed:
        task = get_task(cfg.task)
        listing = ": " + "; ".join(f"{k} ({v})" for k, v in task.strategy_help.items()) if task.strategy_help else ""
        raise ConfigError(f"strategy {cfg.strategy!r} is not available for {task.description}; use one of "
                          f"{', '.join(allowed)}{listing}")
