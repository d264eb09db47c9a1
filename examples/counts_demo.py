"""Count the Toronto arrests data (scikit-lego) by skin colour, observed outcome and a simple
rule-based decision in one pass of clarion's engine, with 200 bootstrap replicates, and derive
the difference in positive proportions of labels (DPL) with a 95% interval from the tables.

Run: python examples/counts_demo.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklego.datasets import load_arrests

import clarion


def main() -> None:
    df = load_arrests(as_frame=True)
    colour = pd.Categorical(df["colour"], categories=["White", "Black"])  # facet a, facet d
    released = (df["released"] == "Yes").to_numpy(np.int8)
    decision = (df["checks"] <= 2).to_numpy(np.int8)  # a stand-in model: few prior checks -> release

    counts = clarion.grouped_counts(colour.codes, released, decision)  # [group, label, prediction]
    boot = clarion.grouped_counts(colour.codes, released, decision, n_bootstrap=200, seed=0)

    def dpl(c):
        n = c.sum(axis=(-2, -1))  # rows per group
        pos = c[..., 1, :].sum(axis=-1)  # observed positives per group
        q = pos / n
        return q[..., 0] - q[..., 1]  # q_a - q_d

    lo, hi = np.percentile(dpl(boot), [2.5, 97.5])
    print(f"clarion {clarion.__version__}: {len(df)} rows, backends {clarion.build_info()['backends']}")
    for gi, name in enumerate(colour.categories):
        c = counts[gi]
        print(f"  {name:5s}: n={c.sum():5d}  released={c[1].sum():5d}  rule releases={c[:, 1].sum():5d}")
    print(f"DPL (White - Black) = {dpl(counts):.4f}, 95% bootstrap interval [{lo:.4f}, {hi:.4f}]")


if __name__ == "__main__":
    main()
