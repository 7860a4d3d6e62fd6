"""Classification of whole items (an image, a text, a clip) into one of the target's classes."""

from tlcore.tasks.spec import Metric, TaskSpec

SPEC = TaskSpec(
    name="classify", package="tlcore.tasks.classification",
    title="Classification", noun="classification", description="classification",
    modalities=("image", "text", "audio"),
    metrics=(Metric("accuracy", "Accuracy", percent=True, card_label="accuracy"),
             Metric("macro_f1", "Macro-F1", card_label="macro-F1")),
    second_metric="macro_f1", unit="items", card_unit="examples", card_title="{modality} classifier",
    labels_key="classes", label_noun="classes",
    data_hint="items with class labels (a text/label table, or label folders)",
    target_hint="pass --target with labeled target data (a few examples per class)",
    use=("from tlcore import load_run", "load_run('RUN_DIR').predict([...])"),
    report_sections=("per_class", "confusion", "flipped"),
    baselines=("scratch", "knn", "classical"), seeds=True, tune=True, transductive=True, scratch_followup=True, detected=False,
    rank_validation=True,
)
