from tlcore.training.loop import TrainConfig, TrainResult, train_classifier

__all__ = ["TrainConfig", "TrainResult", "train_classifier"]
