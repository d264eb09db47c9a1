"""Sinks the one pass feeds besides the bias accumulators: the uniform row sample (kept when the
rows exceed the memory budget)."""

from __future__ import annotations

from typing import Any

import numpy as np


class _Sample:
    """A uniform sample of at most ``size`` rows that does not depend on the chunking: every row gets
    a key from one seeded stream in row order; the rows with the smallest keys are kept."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.rng = size, np.random.default_rng(seed)
        self.frame = None
        self.keys = np.empty(0)
        self.rows = np.empty(0, dtype=np.int64)

    def add(self, frame: Any, start: int) -> None:
        import pandas as pd

        keys = self.rng.random(len(frame))
        rows = np.arange(start, start + len(frame))
        if self.frame is None:
            allf, allk, allr = frame.reset_index(drop=True), keys, rows
        else:
            allf = pd.concat([self.frame, frame], ignore_index=True)
            allk, allr = np.concatenate([self.keys, keys]), np.concatenate([self.rows, rows])
        if len(allk) > self.size:
            keep = np.sort(np.argpartition(allk, self.size)[: self.size])
            allf, allk, allr = allf.iloc[keep].reset_index(drop=True), allk[keep], allr[keep]
        self.frame, self.keys, self.rows = allf, allk, allr

    def result(self) -> Any:
        order = np.argsort(self.rows, kind="stable")
        return self.frame.iloc[order].reset_index(drop=True)
