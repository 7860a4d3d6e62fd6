"""The trainer's callbacks: progress, cancellation, early stopping and checkpoints.

Each is a small object with any of ``on_train_begin``, ``on_step_end``, ``on_epoch_end``, ``on_train_end``,
called as ``hook(trainer, state, control)``; a callback stops training by setting
``control.should_training_stop`` (never by raising, except :class:`Cancelled`, which must unwind the run).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from tlcore.errors import Cancelled
from tlcore.progress import CancelFn, Progress, ProgressFn
from tlcore.training.checkpoint import rng_state, save_checkpoint


class ProgressCallback:
    """A :class:`Progress` event per step (batch loss, ETA) and per epoch (the history row)."""

    def __init__(self, progress: ProgressFn):
        self.progress = progress

    def on_step_end(self, trainer, state, control) -> None:
        done_here = max(state.step - state.start_step, 1)
        per_step = (time.time() - state.started) / done_here
        epochs = trainer.config.epochs
        self.progress(Progress(state.stage, state.step, state.total_steps, f"epoch {state.epoch}/{epochs}",
                               metrics={"epoch": state.epoch, "batch_loss": round(state.batch_loss, 4)},
                               eta_s=per_step * (state.total_steps - state.step)))

    def on_epoch_end(self, trainer, state, control) -> None:
        self.progress(Progress(state.stage, state.epoch * state.steps_per_epoch, state.total_steps,
                               f"epoch {state.epoch} done", metrics=state.result.history[-1]))


class CancelCallback:
    """Raises :class:`Cancelled` at the next step once ``should_cancel()`` says so (the checkpoint stays)."""

    def __init__(self, should_cancel: CancelFn):
        self.should_cancel = should_cancel

    def on_train_begin(self, trainer, state, control) -> None:
        if self.should_cancel():
            raise Cancelled("cancelled before training")

    def on_step_end(self, trainer, state, control) -> None:
        if self.should_cancel():
            raise Cancelled(f"cancelled in epoch {state.epoch}")


class EarlyStopping:
    """Stops after ``patience`` validated epochs without improvement; only when there is a validation split."""

    def __init__(self, patience: int):
        self.patience = patience

    def on_epoch_end(self, trainer, state, control) -> None:
        if state.has_val and state.bad_epochs >= self.patience:
            state.result.stopped_early = True
            control.should_training_stop = True


class CheckpointCallback:
    """Writes the last and best trainable weights, optimizer and scheduler state after every epoch (for resume)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def on_epoch_end(self, trainer, state, control) -> None:
        # Early stopping runs before this callback (see default_callbacks), so a resumed run knows it had finished.
        save_checkpoint(self.folder, trainer.checkpoint_modules(), trainer.optimizer, trainer.scheduler,
                        state.best_state, state.epoch, state.best_score, state.result,
                        rng=rng_state(state.rng), scaler=trainer.scaler)


def default_callbacks(config, checkpoint_dir: Optional[Path], progress: ProgressFn, should_cancel: CancelFn) -> list:
    callbacks: list = [CancelCallback(should_cancel)]
    if config.patience is not None:
        callbacks.append(EarlyStopping(config.patience))
    callbacks.append(ProgressCallback(progress))
    if checkpoint_dir is not None:
        callbacks.append(CheckpointCallback(checkpoint_dir))
    return callbacks
