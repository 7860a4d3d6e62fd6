"""What a task is: one :class:`TaskSpec` per task, found by name in :data:`TASKS`.

A task (classification, named-entity recognition, speech recognition, ...) is one folder ``tlcore/tasks/<task>/``
whose ``__init__.py`` exports ``SPEC``, and one line in :mod:`tlcore.tasks`. The spec carries every task-specific
*fact* (modalities, metrics and their direction, units, strategies, upload types, how its data is described);
the task's *code* lives in the folder's modules, found by convention through :meth:`TaskSpec.part`:

==============  ==========================================================================================
``pipeline``    ``Job``: the task's :class:`~tlcore.tasks.job.TaskJob` (its data, before, after, baselines, scores
                and report, run by :func:`tlcore.settings.pipeline.run_stages`);
                ``check_config(cfg)``: the task's cross-field rules (strategy, which sets are needed); optionally
                ``default_strategy(backbone) -> str``: the strategy when none is given, when it depends on the backbone
                (read through :meth:`TaskSpec.strategy_for`).
``formats``     ``detect(path, modality) -> bool``: is this data of the task (the fallback task has none);
                ``load(path)``: load one split of the task's data.
``serve``       a finished run folder (``run``: its :class:`~tlcore.inference.predict.LoadedRun`):
                ``is_run(run_dir, model_config) -> bool`` (a run without a report: is its model the task's);
                ``BEFORE_FOLDER``: the "before" model is saved in ``before/`` (False: rebuilt, nothing to check);
                ``load_after(run, folder)``, ``load_before(run, folder)``: the models (on ``run.device``);
                ``predict(run, inputs, *, model, top_k, names, backend) -> list[dict]``;
                ``predict_input(run, value, *, model, top_k, backend) -> list[dict]``: a CLI ``--input``;
                optionally ``classes(run)``: the class of each score.
``card``        ``detail(report) -> list[str]``: the task's sections of the model card (markdown lines).
``errors``      ``error_analysis(report)``: the error analysis of a finished run's report (Compare's "Errors":
                confusion cells with their items and top losses, entity errors by kind, worst utterances); a
                one-line DataError when the report lacks per-item predictions.
``diagnosis``   before training: ``diagnose(modality, source, target, *, backbone, seed, n_permutations, progress,
                map_method) -> report``, ``rank(modality, target, names, *, seed, n_boot, progress) -> (report,
                scores)``, and optionally ``candidates(modality) -> names`` (default: the backbone registry's).
``label_next``  what to label next (:mod:`tlcore.experiments.label_next`): ``load_pool``, ``load_labeled``,
                ``split``, ``features_data``, ``vocabulary``, ``targets``, ``fit_probe``, ``uncertainty``,
                ``suggest``, ``score``, ``curve_subset``, ``smallest_curve_size``, ``new_version``; ``METRIC``,
                ``MARGIN``, ``LIST_HINT`` (classification's and multi-label's; a task without it has none).
==============  ==========================================================================================

Code outside ``tlcore/tasks/`` asks the spec (``spec.metric``, ``spec.part("serve")``, ``spec.token_level``...);
it never compares a task name. The specs import nothing heavy: the registry sits below the config layer.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Optional

from tlcore.errors import ConfigError
from tlcore.registry import Registry


@dataclass(frozen=True)
class Metric:
    """One number a task reports: the key in a report's ``before``/``after`` blocks and how to read it."""

    key: str                       # "accuracy", "entity_f1", "wer"
    label: str                     # "Accuracy", "Entity F1", "WER"
    higher_is_better: bool = True
    percent: bool = False          # shown as a percentage (accuracy, WER) rather than as 0.xxx (F1)
    card_label: str = ""           # its name in the model card's table (lower case), default: label

    def fmt(self, x: Optional[float]) -> str:
        if x is None:
            return "–"
        return f"{100 * x:.1f}%" if self.percent else f"{x:.3f}"

    def delta(self, before: Optional[float], after: Optional[float]) -> Optional[str]:
        if before is None or after is None:
            return None
        return f"{100 * (after - before):+.1f} points" if self.percent else f"{after - before:+.3f}"

    def improved(self, difference: float) -> bool:
        """Is ``difference`` (new − old) a change for the better?"""
        return difference > 0 if self.higher_is_better else difference < 0


@dataclass(frozen=True)
class TaskSpec:
    """Everything task-specific that shared code (settings, CLI, reports, UI) needs to know."""

    name: str                       # the config / CLI / report value: "classify", "ner", "asr"
    package: str                    # the task's folder as a module: "tlcore.tasks.ner"
    title: str                      # form label: "Named entities (NER)"
    noun: str                       # in captions: "named entities"
    description: str                # in messages: "named-entity recognition (NER)"
    modalities: tuple[str, ...]     # the data modalities it takes
    metrics: tuple[Metric, ...]     # the headline metric first, then the rest of the card's table
    second_metric: str              # the number shown next to the headline one ("macro_f1", "token_accuracy", "cer")
    unit: str                       # what one eval item is, plural: "items", "sentences", "clips"
    card_unit: str                  # the same in the model card: "examples", "sentences", "clips"
    card_title: str                 # the model card's title ("{modality}" is filled in)
    labels_key: Optional[str]       # report["data"] key listing the labels ("classes", "entity_types"), or None
    label_noun: str                 # what those labels are: "classes", "entity types"
    data_hint: str                  # what its data looks like, for messages
    target_hint: str                # what --target must hold, for messages
    use: tuple[str, ...]            # python lines showing how to use a finished model
    report_sections: tuple[str, ...]  # which detail views its report has (the UI renders each kind)
    strategies: Optional[tuple[str, ...]] = None  # the strategies it takes, default first; None: the shared registry's
    strategy_help: Optional[dict[str, str]] = None  # help of strategies of its own (not in the shared registry)
    default_strategy: str = "linear_probe"
    # Its default learning rate per strategy where it differs from the shared strategy's (TaskJob.default_lr); where
    # each came from is said beside the values in the task's __init__.py.
    lrs: dict[str, float] = field(default_factory=dict)
    # The learning rates benchmarks/derive_defaults.py --tasks tries per strategy on the task's demo (development
    # data) to derive ``lrs`` (tlcore.tasks.default_lrs); empty: its defaults are not derived that way.
    lr_grid: dict[str, tuple[float, ...]] = field(default_factory=dict)
    backbones: Optional[tuple[tuple[str, str], ...]] = None  # its own backbones (name, description); None: registry
    # What a backbone typed by the user (a hub id or a local folder) must be, for forms; "": any of the modality's
    backbone_hint: str = ""
    upload_types: Optional[tuple[str, ...]] = None           # file types an upload takes; None: the default ones
    transductive: bool = False      # domain adaptation (labeled source + unlabeled target) is available
    token_level: bool = False       # predictions are per token (a tagger) rather than per item
    output: str = "softmax"         # scores from the logits: "softmax" (one label each) or "sigmoid" (a set of labels)
    tune: bool = False           # --tune: its trained networks' lr searched on the training items (same budget each)
    seeds: bool = False          # trains several seeds in one run (--seeds; its pipeline Job has reseeded/compare_seeds)
    baselines: tuple[str, ...] = ("scratch", "knn")          # baselines it computes
    card_percent: bool = False      # the model card shows its metrics as percentages
    onnx_refusal: Optional[str] = None  # why its models cannot be exported to ONNX, or None
    scratch_followup: bool = False  # the app queues the scratch baseline as a follow-up job
    detected: bool = True           # found by data-format detection (False: the fallback task)
    rank_validation: bool = False   # `rank --validate` (fine-tune every candidate and correlate) is available
    # Its Hugging Face Hub pipeline tag (the model card's ``pipeline_tag`` and model-index task type); "{modality}" is
    # filled in: "text-classification", "image-classification", "audio-classification".
    hub_pipeline: str = "{modality}-classification"

    @property
    def metric(self) -> Metric:
        """The headline metric."""
        return self.metrics[0]

    def metric_named(self, key: str) -> Metric:
        for m in self.metrics:
            if m.key == key:
                return m
        raise KeyError(key)

    @property
    def second(self) -> Metric:
        return self.metric_named(self.second_metric)

    @property
    def fixed_modality(self) -> Optional[str]:
        """The modality when the task takes only one (ner: text), else None (the data set's)."""
        return self.modalities[0] if len(self.modalities) == 1 else None

    def part(self, module: str) -> ModuleType:
        """The task's module ``module`` (pipeline, formats, serve, card), imported on first use: the task code
        imports torch and transformers, the spec must stay light."""
        try:
            return importlib.import_module(f"{self.package}.{module}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{self.package}.{module}":
                raise ConfigError(f"task {self.name!r} has no {module} ({self.description})") from None
            raise

    def strategy_for(self, backbone: Optional[str]) -> str:
        """The strategy a run gets when none is given: the pipeline's ``default_strategy(backbone)`` where it depends
        on the backbone (speech recognition: decoder for Whisper, full for a CTC model), else ``default_strategy``."""
        pick = getattr(self.part("pipeline"), "default_strategy", None)
        return pick(backbone) if pick is not None else self.default_strategy

    def check_modality(self, modality: str) -> None:
        """ConfigError when the task does not take ``modality`` (one message for the CLI, the API and the app)."""
        if modality not in self.modalities:
            raise ConfigError(f"task {self.name!r} is {self.description} and needs modality "
                              f"{' or '.join(repr(m) for m in self.modalities)}, not {modality!r}: use --modality "
                              f"{self.modalities[0]}")


TASKS: Registry[TaskSpec] = Registry("task")
DEFAULT_TASK = "classify"


def register_task(spec: TaskSpec) -> TaskSpec:
    return TASKS.register(spec.name, spec)


def get_task(name: Optional[str]) -> TaskSpec:
    """The spec of task ``name`` (None: the default task); an unknown name lists the known ones."""
    return TASKS.get(name or DEFAULT_TASK)


def task_names() -> tuple[str, ...]:
    return tuple(TASKS.names())


def all_tasks() -> list[TaskSpec]:
    return [TASKS.get(n) for n in TASKS.names()]


def task_of(report: dict) -> TaskSpec:
    """The spec of the task that wrote ``report`` (reports from before tasks existed, and unknown tasks, read as
    the default task)."""
    name = report.get("task") or DEFAULT_TASK
    return TASKS.get(name) if name in TASKS else TASKS.get(DEFAULT_TASK)
