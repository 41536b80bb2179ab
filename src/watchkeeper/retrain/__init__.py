"""Retraining: mature labelled data from the store, a candidate trained by the model's own
function, a paired significance gate against the champion, registration with lineage.

See docs/retraining.md.
"""

from watchkeeper.retrain.config import RetrainConfig
from watchkeeper.retrain.data import TrainingData, assemble
from watchkeeper.retrain.executor import Executor, Handoff, JobResult, LocalProcessExecutor
from watchkeeper.retrain.pipeline import RetrainRun, TrainingContext, gate, retrain
from watchkeeper.retrain.runs import RetrainJob, RetrainRunRecord, RunStatus, TriggerKind
from watchkeeper.retrain.spec import RetrainSpec

__all__ = [
    "Executor",
    "Handoff",
    "JobResult",
    "LocalProcessExecutor",
    "RetrainConfig",
    "RetrainJob",
    "RetrainRun",
    "RetrainRunRecord",
    "RetrainSpec",
    "RunStatus",
    "TrainingContext",
    "TrainingData",
    "TriggerKind",
    "assemble",
    "gate",
    "retrain",
]
