"""A long grid of probability thresholds is checked with numpy (``Spec.build``), with the errors
the value-by-value checks give for a short list."""

from __future__ import annotations

import numpy as np
import pytest

from clarion.bias._engine import Spec

KW = dict(label="y", facet="f", label_values=[1], predicted_label="p")


def _error(thresholds):
    try:
        Spec.build(**KW, probability_threshold=thresholds)
    except ValueError as exc:
        return str(exc).replace(repr(thresholds), "<T>")
    return None


@pytest.mark.parametrize(
    "bad",
    [float("nan"), -0.01, 1.5, float("inf"), 0.25],  # 0.25: a repeat of a grid value
)
def test_long_grid_errors_equal_short_list_errors(bad):
    grid = [float(t) for t in np.linspace(0, 1, 41)]
    long = grid + [bad]
    short = [0.25, bad] if bad == 0.25 else [bad]
    assert _error(long) is not None
    assert _error(long) == _error(short)


def test_long_grid_accepted():
    grid = [float(t) for t in np.linspace(0, 1, 1101)]
    spec = Spec.build(**KW, probability_threshold=grid)
    assert spec.thresholds == grid and spec.multi_model
    assert _error(grid[:10] + [True] + grid[10:40]) == _error([True])  # (a bool: the loop's check)
