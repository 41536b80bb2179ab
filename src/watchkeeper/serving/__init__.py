"""Serving registry versions: the router (canary, sticky A/B, shadow), predictions logged.

``config.py`` the routing spec, ``router.py`` the assignment of rows to arms, ``predictors.py``
targets resolved and versions loaded (cached), ``log.py`` predictions logged to the monitor,
``service.py`` the :class:`Serving` facade the ``predict`` route and the rollout controller use.
"""

from __future__ import annotations

from watchkeeper.serving.config import Arm, RoutingConfig, Shadow, Target, champion_config
from watchkeeper.serving.log import PredictionLog
from watchkeeper.serving.predictors import PredictorCache, Served
from watchkeeper.serving.router import Assignment, Router, bucket
from watchkeeper.serving.service import Prediction, PredictRequest, Serving

__all__ = [
    "Arm",
    "Assignment",
    "PredictRequest",
    "Prediction",
    "PredictionLog",
    "PredictorCache",
    "Router",
    "RoutingConfig",
    "Served",
    "Serving",
    "Shadow",
    "Target",
    "bucket",
    "champion_config",
]
