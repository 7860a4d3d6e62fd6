"""Transfer strategies: how much of the pretrained backbone is trained. A registry; see ``STRATEGIES``."""

from tlcore.strategies import adaptation, finetune, linear_probe, lora  # noqa: F401  (registration)
from tlcore.strategies.base import STRATEGIES, Strategy, check_backbone, get_strategy

__all__ = ["STRATEGIES", "Strategy", "check_backbone", "get_strategy"]
