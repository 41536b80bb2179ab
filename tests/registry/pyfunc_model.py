"""A pyfunc model for the registry tests: a linear scorer whose weights are a JSON file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd


class LinearScore:
    """``predict`` gives w·x + b for the columns named in the weights file."""

    def __init__(self, weights: dict[str, float], bias: float) -> None:
        self.weights = weights
        self.bias = bias

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return frame[list(self.weights)].to_numpy() @ np.array(list(self.weights.values())) + (
            self.bias
        )


def build(path: Path) -> LinearScore:
    """The entry point: ``tests.registry.pyfunc_model:build``."""
    spec = json.loads(Path(path).read_text())
    return LinearScore(spec["weights"], spec["bias"])
