"""``clarion demo``: a real end-to-end analysis on a real data set, in well under a minute.

The data is the Toronto arrests data set (5,226 arrests for simple possession of marijuana,
1997–2002; Toronto Star), shipped inside scikit-lego (``pip install 'clarion[examples]'``). The
question is the one the newspaper asked: are Black arrestees less likely to be released with a
summons? The demo

1. writes the data as ``DIR/data/arrests.csv``;
2. trains a small scikit-learn model (one-hot encoding + logistic regression) predicting
   ``released`` from the other columns, saved as ``DIR/model.skops`` (skops: a data-only format,
   nothing is unpickled when it is loaded), and picks its decision threshold
   (:func:`choose_threshold`): the score above which the model releases the same share of the
   training rows as the police did (82.9%), so that both decisions are made. At the default 0.5
   the model would release 97.8% of arrestees — accuracy 0.830 against a base rate of 0.829, a
   model that decides nothing, whose "disparities" would be noise. The features predict
   ``released`` only weakly (held-out ROC AUC 0.72; no model we tried — logistic regression with
   splines and interactions, gradient boosting — beats the base rate's accuracy on held-out rows),
   so at the chosen threshold the model trades accuracy (0.79 held out) for deciding both ways
   (balanced accuracy 0.61 against 0.53); the report shows the confusion matrix per group;
3. writes a Clarify analysis config ``DIR/analysis_config.json``: pre- and post-training bias for
   the facets ``colour`` (Black) and ``sex`` (Female), label ``released`` = Yes, conditional
   disparity by ``year``, 95% bootstrap intervals, Kernel SHAP with a seed, partial dependence of
   the top features;
4. runs :func:`clarion.analyze` into ``DIR`` and prints where ``report.html`` is.

The written config names the model file, so the same analysis reruns from the command line::

    clarion analyze --config DIR/analysis_config.json --data DIR/data/arrests.csv --output OTHER_DIR

The ``clarion demo`` subcommand is :mod:`clarion.cli.demo`.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["DEMO_CONFIG", "choose_threshold", "load_data", "run_demo", "train_model"]

FEATURES = ["colour", "year", "age", "sex", "employed", "citizen", "checks"]
CATEGORICAL = ["colour", "sex", "employed", "citizen"]

#: the demo's analysis config (written to DIR/analysis_config.json; headers are added from the data)
DEMO_CONFIG: dict[str, Any] = {
    "version": "1.0",
    "dataset_type": "text/csv",
    "label": "released",
    "label_values_or_threshold": ["Yes"],
    "facet": [
        {"name_or_index": "colour", "value_or_threshold": ["Black"]},
        {"name_or_index": "sex", "value_or_threshold": ["Female"]},
    ],
    "group_variable": "year",
    "probability_threshold": 0.5,  # replaced by choose_threshold(model, data) in run_demo
    "methods": {
        "pre_training_bias": {"methods": "all", "confidence": 0.95, "n_bootstrap": 200},
        "post_training_bias": {"methods": "all", "confidence": 0.95, "n_bootstrap": 200},
        "shap": {
            "num_clusters": 5,
            "agg_method": "mean_abs",
            "use_logit": False,
            "save_local_shap_values": True,
            "seed": 0,
        },
        "pdp": {"top_k_features": 3, "grid_resolution": 10},
        "report": {"name": "report", "title": "Toronto arrests: who is released with a summons?"},
    },
    "predictor": {"probability": 1, "label_headers": ["Yes"]},
}


def load_data() -> Any:
    """The Toronto arrests data as a DataFrame (needs scikit-lego: ``pip install 'clarion[examples]'``)."""
    try:
        from sklego.datasets import load_arrests
    except ImportError:
        raise ImportError("clarion demo needs scikit-lego for its data set: pip install 'clarion[examples]'") from None
    df = load_arrests(as_frame=True)
    return df[["released", *FEATURES]].reset_index(drop=True)


def train_model(df: Any, *, seed: int = 0) -> Any:
    """A scikit-learn Pipeline (one-hot + logistic regression) fitted on a 70% split of ``df``."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    train, _ = train_test_split(df, test_size=0.3, random_state=seed, stratify=df["released"])
    pre = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
            ("num", StandardScaler(), [c for c in FEATURES if c not in CATEGORICAL]),
        ]
    )
    model = Pipeline([("prep", pre), ("clf", LogisticRegression(max_iter=1000))])
    model.fit(train[FEATURES], train["released"])
    return model


def choose_threshold(model: Any, df: Any, *, seed: int = 0) -> float:
    """The demo's ``probability_threshold``: on the training split of :func:`train_model`, the
    score quantile at which the model predicts ``released = Yes`` for the same share of rows as
    observed, rounded to 2 decimals (a point of the report's threshold curves)."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    train, _ = train_test_split(df, test_size=0.3, random_state=seed, stratify=df["released"])
    scores = model.predict_proba(train[FEATURES])[:, list(model.classes_).index("Yes")]
    released = float((train["released"] == "Yes").mean())
    return round(float(np.quantile(scores, 1.0 - released)), 2)


def run_demo(output_dir: str | os.PathLike, *, overwrite: bool = False, progress: bool = True) -> Any:
    """Write the data, train the model, write the config and run the analysis into ``output_dir``.

    Returns
    -------
    clarion.job.AnalysisResult
    """
    from clarion._io import atomic_write_text
    from clarion.config import AnalysisConfig
    from clarion.job import analyze, prepare_output_dir, staged

    out = os.fspath(output_dir)
    prepare_output_dir(out, overwrite)
    df = load_data()
    # everything is written into a temporary sibling folder that becomes ``out`` only when the whole
    # demo has succeeded: a failed or interrupted demo leaves nothing behind that blocks a rerun
    with staged(out) as st:
        stage = st.stage
        data_path = os.path.join(stage, "data", "arrests.csv")
        atomic_write_text(data_path, df.to_csv(index=False))
        model = train_model(df)
        try:  # the written config names the model file, so that the analysis reruns from the CLI
            import skops.io as sio
        except ImportError as exc:
            raise ImportError("clarion demo needs skops to save its model: pip install 'clarion[examples]'") from exc
        cfg = dict(DEMO_CONFIG, headers=list(df.columns), probability_threshold=choose_threshold(model, df))
        sio.dump(model, os.path.join(stage, "model.skops"))
        cfg["predictor"] = dict(cfg["predictor"], model_uri="model.skops")
        config_path = os.path.join(stage, "analysis_config.json")
        AnalysisConfig.from_dict(cfg).write(config_path)
        result = analyze(config_path, data_path, output_dir=stage, overwrite=True, progress=progress)
    return st.moved(result)
