from __future__ import annotations

import pandas as pd
import pytest

from watchkeeper.demo import load_rainfall


@pytest.fixture(scope="session")
def rainfall() -> pd.DataFrame:
    """The bundled real data set: documented drift from row 12,000 on."""
    return load_rainfall()
