"""The one trainer (:mod:`tlcore.training.trainer`), its callbacks and checkpoints."""

from tlcore.training.trainer import TrainConfig, Trainer, TrainResult

__all__ = ["TrainConfig", "TrainResult", "Trainer"]
