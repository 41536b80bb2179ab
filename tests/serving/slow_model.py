"""A pyfunc model for the serving tests: sleeps, then predicts x1 + x2 (a slow model)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd


class Sleepy:
    """``predict`` waits ``seconds`` per call, then gives ``x1 + x2``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        time.sleep(self.seconds)
        return frame["x1"].to_numpy() + frame["x2"].to_numpy()


def build(path: Path) -> Sleepy:
    """The entry point: ``tests.serving.slow_model:build``."""
    return Sleepy(json.loads(Path(path).read_text())["seconds"])
