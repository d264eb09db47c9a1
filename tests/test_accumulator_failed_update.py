"""An Accumulator whose updates failed before counting anything reports that it has no rows (it
raised ``KeyError: 'pre'``), and a window that only saw failed updates is not listed."""

from __future__ import annotations

import pandas as pd
import pytest

from clarion.bias import Accumulator, report


def test_report_after_only_failed_updates_says_no_rows():
    a = Accumulator(label="y", facet="g", label_values=[1])
    with pytest.raises(ValueError, match="facet: column 'g' is not in the data"):
        a.update(pd.DataFrame({"y": [1, 0], "x": [1, 2]}))
    assert a.windows() == []
    with pytest.raises(ValueError, match="no rows were counted yet"):
        a.report()
    good = pd.DataFrame({"y": [1, 0, 1, 0, 1], "g": ["a", "b", "a", "b", "b"]})
    a.update(good)  # and it goes on as if the failed update never happened
    want = report(good, label="y", facet="g", label_values=[1], methods=["CI", "DPL"]).to_frame()
    pd.testing.assert_frame_equal(a.report(["CI", "DPL"]).to_frame(), want)


def test_window_of_a_failed_update_holds_no_counts():
    a = Accumulator(label="y", facet="g", label_values=[1], time_column="t", window="1D")
    ok = pd.DataFrame({"y": [1, 0], "g": ["a", "b"], "t": pd.to_datetime(["2026-01-01", "2026-01-01"])})
    a.update(ok)
    bad = pd.DataFrame({"y": [1, 0], "g": ["a", "b"], "t": pd.to_datetime(["2026-01-02", "2026-01-02"])})
    bad["w"] = 1.0
    with pytest.raises(ValueError):
        a.update(bad.drop(columns="g"))
    assert len(a.windows()) == 1
    with pytest.raises(ValueError, match="holds no counts"):
        a.report(window="2026-01-02T00:00:00")
    a.report()  # every counted window: no KeyError
