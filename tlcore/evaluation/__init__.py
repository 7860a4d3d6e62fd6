from tlcore.evaluation.metrics import classification_metrics, flipped_examples, paired_difference
from tlcore.evaluation.policy import transfer_warnings

__all__ = ["classification_metrics", "flipped_examples", "paired_difference", "transfer_warnings"]
