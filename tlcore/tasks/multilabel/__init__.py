"""Multi-label classification: each item (a text or an image) gets a *set* of labels, one sigmoid per label with a
decision threshold chosen on validation data (:mod:`tlcore.tasks.multilabel.pipeline`)."""

from tlcore.tasks.spec import Metric, TaskSpec

SPEC = TaskSpec(
    name="multilabel", package="tlcore.tasks.multilabel",
    title="Multi-label classification", noun="multi-label classification",
    description="multi-label classification (a set of labels per item)",
    modalities=("text", "image"),
    metrics=(Metric("micro_f1", "Micro-F1", card_label="micro-F1"),
             Metric("macro_f1", "Macro-F1", card_label="macro-F1"),
             Metric("subset_accuracy", "Subset accuracy", percent=True, card_label="subset accuracy")),
    second_metric="macro_f1", unit="items", card_unit="examples",
    card_title="multi-label {modality} classifier", labels_key="classes", label_noun="labels",
    data_hint="items with label sets (a table with text,labels or path,labels; labels as a|b or a JSON list)",
    target_hint=("pass --target with a multi-label table: text,labels (texts) or path,labels (images), the labels "
                 "of a row as a|b or a JSON list"),
    use=("from tlcore import load_run", "load_run('RUN_DIR').predict([...])   # the labels above each one's threshold"),
    report_sections=("per_class", "flipped"),
    strategies=("linear_probe", "partial", "full", "lora"),
    upload_types=("csv", "tsv", "jsonl", "zip"),
    output="sigmoid",
)
