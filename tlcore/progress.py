"""Progress events: how long-running engine work reports where it is (CLI bars, the worker, the app)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional


@dataclass
class Progress:
    stage: str                      # e.g. "data", "features", "before", "train", "scratch", "eval", "done"
    step: int = 0
    total: int = 0
    message: str = ""
    metrics: dict = field(default_factory=dict)   # e.g. {"epoch": 2, "train_loss": 0.41, "val_accuracy": 0.88}
    eta_s: Optional[float] = None
    time: float = field(default_factory=time.time)

    def to_dict(self) -> dict:
        return asdict(self)


ProgressFn = Callable[[Progress], None]
CancelFn = Callable[[], bool]


def no_progress(_: Progress) -> None:
    return None


def never_cancel() -> bool:
    return False
