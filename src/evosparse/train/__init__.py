"""Training: config, loop, callbacks, checkpoints, history, and whole runs (what ``evosparse train`` does)."""

from evosparse.train.build import build_model, build_optimizer, build_strategy, derive_seed
from evosparse.train.callbacks import (
    Callback,
    CallbackList,
    CheckpointCallback,
    EvaluationCallback,
    HistoryCallback,
    LogCallback,
    ProgressBarCallback,
    TopologyCallback,
    default_callbacks,
)
from evosparse.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from evosparse.train.config import TrainConfig
from evosparse.train.history import History
from evosparse.train.loop import DivergenceError, Trainer
from evosparse.train.metrics import evaluate
from evosparse.train.run import RunError, RunResult, build_trainer, resume, train
from evosparse.train.thread_tuner import ThreadTuner

__all__ = [
    "Callback",
    "CallbackList",
    "CheckpointCallback",
    "CheckpointError",
    "DivergenceError",
    "EvaluationCallback",
    "History",
    "HistoryCallback",
    "LogCallback",
    "ProgressBarCallback",
    "RunError",
    "RunResult",
    "ThreadTuner",
    "TopologyCallback",
    "TrainConfig",
    "Trainer",
    "build_model",
    "build_optimizer",
    "build_trainer",
    "build_strategy",
    "default_callbacks",
    "derive_seed",
    "evaluate",
    "load_checkpoint",
    "resume",
    "save_checkpoint",
    "train",
]
