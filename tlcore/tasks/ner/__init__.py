"""Named-entity recognition: token classification of text with BIO tags (``B-PER``, ``I-LOC``, ``O``)."""

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
    # Backbone learning rates chosen on the ner-shift demo (tens of sentences, ~10 epochs): higher than the
    # classification defaults because token tagging from a fresh head needs more movement in few steps.
    lrs={"partial": 3e-4, "full": 1e-4, "lora": 1e-3},
    upload_types=("jsonl", "conll", "txt", "zip"),
    token_level=True, baselines=("scratch",), hub_pipeline="token-classification",
)
