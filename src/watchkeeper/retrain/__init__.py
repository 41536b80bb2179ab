"""Retraining: mature labelled data from the store, a candidate trained by the model's own
function, a paired significance gate against the champion, registration with lineage.

See docs/retraining.md.
"""

from watchkeeper.retrain.data import TrainingData, assemble
from watchkeeper.retrain.pipeline import RetrainRun, RunStatus, TrainingContext, gate, retrain
from watchkeeper.retrain.spec import RetrainSpec

__all__ = [
    "RetrainRun",
    "RetrainSpec",
    "RunStatus",
    "TrainingContext",
    "TrainingData",
    "assemble",
    "gate",
    "retrain",
]
