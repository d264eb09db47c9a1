"""Kernel SHAP attributions, k-means baselines and partial dependence.

* :class:`KernelShap` — local attributions of many rows with one shared coalition plan and one
  linear operator; the compiled core builds, averages and solves everything but the model.
* :class:`Explanation` — local values plus Clarify's global aggregations.
* :func:`kmeans_baseline` — weighted k-means background (modes for categorical columns).
* :func:`partial_dependence` — Clarify-style partial dependence through the same masking path.
* :class:`TextShap` — attributions to units of text (tokens, sentences, paragraphs; Clarify's
  ``text_config``), in :mod:`clarion.explain.text`.
* :class:`OnlineExplainer` — predictions plus attributions per request, in Clarify's online
  explainability response format (what ``clarion serve --explain`` answers).
* :class:`ImageShap` — Kernel SHAP over superpixels for image classifiers and detectors
  (:mod:`clarion.explain.image`, Clarify's ``image_config``).
"""

from __future__ import annotations

from clarion.explain._baseline import Baseline, kmeans_baseline
from clarion.explain._kernel_shap import Explanation, KernelShap, ShapConditioningWarning
from clarion.explain._pdp import partial_dependence
from clarion.explain.image import ImageExplanation, ImageShap
from clarion.explain.online import OnlineExplainer, OnlineExplanation
from clarion.explain.text import TextExplanation, TextShap

__all__ = [
    "Baseline",
    "Explanation",
    "ImageExplanation",
    "ImageShap",
    "KernelShap",
    "OnlineExplainer",
    "OnlineExplanation",
    "ShapConditioningWarning",
    "TextExplanation",
    "TextShap",
    "kmeans_baseline",
    "partial_dependence",
]
