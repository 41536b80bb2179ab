"""FineBins must equal np.searchsorted(edges, values, side="right") exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from watchkeeper.profiles._binning import FineBins, FineBinsBlock
from watchkeeper.profiles.numeric import fine_edges

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=200, deadline=None)
@given(
    edge_values=arrays(np.float64, st.integers(1, 120), elements=finite),
    values=arrays(np.float64, st.integers(0, 300), elements=finite),
)
def test_index_equals_searchsorted(edge_values: np.ndarray, values: np.ndarray) -> None:
    edges = np.unique(edge_values)
    bins = FineBins(edges)
    np.testing.assert_array_equal(bins.index(values), np.searchsorted(edges, values, "right"))


def test_values_on_edges_and_neighbours() -> None:
    rng = np.random.default_rng(3)
    edges = fine_edges(rng.standard_cauchy(50_000))
    probes = np.concatenate(
        (edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf), [-1e308, 1e308])
    )
    bins = FineBins(edges)
    np.testing.assert_array_equal(bins.index(probes), np.searchsorted(edges, probes, "right"))


def test_counts_cover_tails() -> None:
    bins = FineBins(np.array([0.0, 1.0, 2.0]))
    counts = bins.counts(np.array([-5.0, 0.0, 0.5, 1.0, 1.99, 2.0, 7.0]))
    assert counts.tolist() == [1, 2, 2, 2]
    assert bins.size == 4


def test_uneven_edges_fall_back_to_binary_search() -> None:
    edges = np.concatenate((np.linspace(0.0, 1e-9, 50), [1e12]))
    bins = FineBins(edges)
    values = np.array([-1.0, 5e-10, 1.0, 2e12])
    np.testing.assert_array_equal(bins.index(values), np.searchsorted(edges, values, "right"))


@settings(max_examples=100, deadline=None)
@given(
    columns=st.lists(
        st.tuples(
            arrays(np.float64, st.integers(1, 60), elements=finite),
            st.sampled_from([1.0, 1e-3, 1e6]),
        ),
        min_size=1,
        max_size=5,
    ),
    size=st.integers(0, 200),
    seed=st.integers(0, 2**32 - 1),
)
@pytest.mark.filterwarnings("ignore:overflow encountered in nextafter")
def test_block_counts_equal_each_columns_counts(
    columns: list[tuple[np.ndarray, float]], size: int, seed: int
) -> None:
    bins = [FineBins(np.unique(edge_values)) for edge_values, _ in columns]
    if not FineBinsBlock.usable(bins):
        return
    rng = np.random.default_rng(seed)
    rows = []
    for column, (_, scale) in zip(bins, columns, strict=True):
        edges = column.edges
        probes = np.concatenate((edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf)))
        probes = probes[np.isfinite(probes)]
        rows.append(np.concatenate((rng.choice(probes, size), rng.normal(size=size) * scale)))
    values = np.stack(rows)
    for counts, column, row in zip(FineBinsBlock(bins).counts(values), bins, values, strict=True):
        np.testing.assert_array_equal(counts, column.counts(row))


def test_block_counts_on_edges_of_several_columns() -> None:
    rng = np.random.default_rng(5)
    bins = [
        FineBins(fine_edges(sample))
        for sample in (
            rng.normal(size=5000),
            rng.exponential(size=5000) * 1e4,
            rng.standard_cauchy(5000),
        )
    ]
    assert FineBinsBlock.usable(bins)
    probes = [
        np.concatenate((b.edges, np.nextafter(b.edges, -np.inf), np.nextafter(b.edges, np.inf)))
        for b in bins
    ]
    width = min(p.size for p in probes)
    values = np.stack([p[:width] for p in probes])
    for counts, column, row in zip(FineBinsBlock(bins).counts(values), bins, values, strict=True):
        np.testing.assert_array_equal(counts, column.counts(row))
