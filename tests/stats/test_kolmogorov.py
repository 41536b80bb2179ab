"""The KS survival function computed without ``scipy.stats``: every branch against SciPy's."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
from scipy import special, stats

from watchkeeper.stats._drift_numeric import smirnov_sf
from watchkeeper.stats._kolmogorov import kstwo_sf

# n x² picks the branch: closed forms at the ends, Durbin's matrix (n x^1.5 <= 1.4), Pelz-Good,
# twice Smirnov's one-sided law (2.2 <= n x² < 370) and the underflow beyond.
N_X_SQUARED = [1e-4, 0.01, 0.05, 0.2, 0.5, 1.0, 1.5, 2.19, 2.2, 5.0, 50.0, 369.0, 371.0]


@pytest.mark.parametrize("n", [141, 500, 5_000, 50_000, 100_000, 100_001, 400_000])
@pytest.mark.parametrize("n_x_squared", N_X_SQUARED)
def test_every_branch_matches_scipy_kstwo(n: int, n_x_squared: float) -> None:
    x = min(math.sqrt(n_x_squared / n), 0.999)
    expected = float(stats.kstwo.sf(x, n))
    assert kstwo_sf(n, x) == pytest.approx(expected, rel=1e-12, abs=1e-300)
    # The vectorised one-sided sum the report passes in agrees to its own precision.
    assert kstwo_sf(n, x, smirnov=smirnov_sf) == pytest.approx(expected, rel=1e-6, abs=1e-300)


@pytest.mark.parametrize("n", [141, 1_000])
@pytest.mark.parametrize("t", [0.3, 0.5, 0.7, 1.0])
def test_the_closed_forms_near_zero_match_scipy(n: int, t: float) -> None:
    x = t / n
    assert kstwo_sf(n, x) == pytest.approx(float(stats.kstwo.sf(x, n)), rel=1e-12)


@pytest.mark.parametrize("x", [0.5, 0.7, 0.995, 1.0, 1.5, 0.0, -0.1])
def test_large_and_out_of_range_statistics_match_scipy(x: float) -> None:
    n = 200
    assert kstwo_sf(n, x) == pytest.approx(float(stats.kstwo.sf(x, n)), rel=1e-12, abs=1e-300)
    assert kstwo_sf(n, 1 - 0.5 / n) == pytest.approx(
        float(stats.kstwo.sf(1 - 0.5 / n, n)), rel=1e-12
    )


@pytest.mark.parametrize("n", [1, 10, 140])
@pytest.mark.parametrize("x", [0.02, 0.1, 0.3, 0.6])
def test_small_n_is_scipys_own(n: int, x: float) -> None:
    assert kstwo_sf(n, x) == float(stats.kstwo.sf(x, n))


def test_the_one_sided_default_is_scipy_special() -> None:
    n, x = 1_000, math.sqrt(10.0 / 1_000)
    assert kstwo_sf(n, x) == pytest.approx(2 * float(special.smirnov(n, x)), rel=1e-15)


def test_a_report_on_large_samples_never_imports_scipy_stats(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = (
        "import sys\n"
        "import numpy as np, pandas as pd\n"
        "from watchkeeper import Report\n"
        "rng = np.random.default_rng(0)\n"
        "def frame(shift):\n"
        "    return pd.DataFrame({'x': rng.normal(shift, size=12_000),\n"
        "        'y': rng.normal(size=12_000), 'c': rng.choice(['a', 'b', 'c'], 12_000),\n"
        "        'b': rng.random(12_000) < 0.3,\n"
        "        'm': np.where(rng.random(12_000) < 0.05, np.nan, 1.0)})\n"
        "result = Report().run(frame(0.0), frame(0.3))\n"
        "assert result.drifted_columns\n"
        "print('scipy.stats' in sys.modules)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert completed.stdout.strip() == "False"
