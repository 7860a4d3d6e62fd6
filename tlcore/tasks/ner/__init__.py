"""Named-entity recognition: token classification of text with BIO tags (``B-PER``, ``I-LOC``, ``O``)."""

from tlcore.tasks.default_lrs import derived_lrs
from tlcore.tasks.spec import Metric, TaskSpec

SPEC = TaskSpec(
    name="ner", package="tlcore.tasks.ner",
    title="Named entities (NER)", noun="named entities", description="named-entity recognition (NER)",
    modalities=("text",),
    metrics=(Metric("entity_f1", "Entity F1", card_label="entity F1"),
             Metric("entity_precision", "Precision", card_label="precision"),
             Metric("entity_recall", "Recall", card_label="recall"),
             Metric("token_accuracy", "Token accuracy", card_label="token accuracy")),
    second_metric="token_accuracy", unit="sentences", card_unit="sentences",
    card_title="named-entity recognition (token classification)",
    labels_key="entity_types", label_noun="entity types",
    data_hint="token-tagged sentences (.jsonl with tokens + tags, or CoNLL text)",
    target_hint="pass --target with tagged target sentences (.jsonl with tokens + tags, or CoNLL text)",
    use=("from tlcore import load_run", "load_run('RUN_DIR').predict(['just saw priya at tesco in leeds'])"),
    report_sections=("per_type", "flipped_sentences"),
    strategies=("linear_probe", "partial", "full", "lora"),
    # Backbone learning rates derived on development data (ner-shift's target split, 30% held out, never its eval
    # split) by benchmarks/derive_defaults.py --tasks (evidence: docs/task_default_lrs.json)
    lrs=derived_lrs("ner"),
    lr_grid={"partial": (5e-5, 1e-4, 3e-4, 1e-3), "full": (2e-5, 5e-5, 1e-4, 2e-4), "lora": (5e-4, 1e-3, 2e-3)},
    upload_types=("jsonl", "conll", "txt", "zip"),
    token_level=True, baselines=("scratch",), hub_pipeline="token-classification",
)
