"""The one trainer (:mod:`tlcore.training.trainer`), its callbacks and checkpoints."""

from tlcore.training.trainer import TrainConfig, TrainResult, Trainer

__all__ = ["TrainConfig", "TrainResult", "Trainer"]
