"""A plain install runs every CLI job; a run replaces its output folder only when it succeeds; output
files honour the umask; the CLI answers bad input with one line, never a traceback (issue 13, items
1, 16, 20 and 21)."""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import os
import re
import stat
import subprocess
import sys
import textwrap
import types

import numpy as np
import pandas as pd
import pytest

import clarion
from clarion import analysis as A
from clarion import cli
from clarion.cli import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(clarion.__file__)))


# ---- helpers -------------------------------------------------------------------------------------


def data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    g = rng.choice(["a", "b"], n, p=[0.6, 0.4])
    x1 = rng.normal(size=n).round(4)
    x2 = rng.integers(0, 10, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(x1 + 0.2 * x2 - 1 + 0.8 * (g == "a"))))).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "g": g, "y": y})


def config(**extra):
    cfg = {
        "version": "1.0",
        "dataset_type": "text/csv",
        "label": "y",
        "label_values_or_threshold": [1],
        "facet": [{"name_or_index": "g", "value_or_threshold": ["b"]}],
        "methods": {
            "pre_training_bias": {"methods": "all"},
            "post_training_bias": {"methods": "all"},
            "shap": {"num_clusters": 3, "num_samples": 20, "seed": 1},
            "pdp": {"top_k_features": 1, "grid_resolution": 4},
            "report": {"name": "report", "title": "t"},
        },
        "predictor": {"probability": 1},
    }
    cfg.update(extra)
    return cfg


def bias_only(**extra):
    cfg = config(**extra)
    cfg["methods"] = {
        "pre_training_bias": {"methods": ["CI", "DPL"]},
        "report": cfg["methods"].get("report", {"name": "report"}),
    }
    cfg.pop("predictor", None)
    return cfg


def fit(df):
    pytest.importorskip("sklearn")
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    pre = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["g"])], remainder="passthrough")
    return Pipeline([("p", pre), ("m", LogisticRegression())]).fit(df[["x1", "x2", "g"]], df["y"])


def snapshot(folder):
    """Every file and folder under ``folder`` with its content digest (the folder byte for byte)."""
    out = {}
    for d, dirs, files in os.walk(folder):
        for name in dirs:
            out[os.path.relpath(os.path.join(d, name), folder) + "/"] = None
        for name in files:
            p = os.path.join(d, name)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, folder)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def leftovers(parent):
    """Temporary folders of a run left in ``parent``."""
    return [n for n in os.listdir(parent) if ".clarion-partial-" in n]


def env(**extra):
    e = dict(os.environ)
    e["PYTHONPATH"] = PACKAGE_PARENT + os.pathsep + e.get("PYTHONPATH", "")
    e.pop(cli.DEBUG_ENV, None)
    e.update(extra)
    return e


def run_cli(*args, cwd=None, blocked=(), **kw):
    """``clarion ARGS`` in a fresh interpreter in which the top-level modules ``blocked`` cannot be
    imported (as if not installed)."""
    code = textwrap.dedent("""
        import importlib.abc, json, sys
        blocked = set(json.loads(sys.argv[1]))
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in blocked:
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        sys.meta_path.insert(0, Block())
        from clarion.cli import main
        sys.exit(main(sys.argv[2:]))
    """)
    return subprocess.run(
        [sys.executable, "-c", code, json.dumps(sorted(blocked)), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env(**kw),
        timeout=600,
        check=False,
    )


def assert_one_line_error(proc, *needles, command=None):
    assert proc.returncode == EXIT_ERROR, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ": error: " in ln]
    assert len(errors) == 1, proc.stderr
    if command:
        assert errors[0].startswith(f"clarion {command}: error: "), errors[0]
    for n in needles:
        assert n in errors[0], (n, errors[0])
    return errors[0]


# ---- item 1: the base install runs every CLI job ----------------------------------------------------


def _pyproject():
    tomllib = pytest.importorskip("tomllib")
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as fh:
        return tomllib.load(fh)["project"]


def _norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(requirements):
    """Distribution names (normalised) installed by ``requirements``, with their dependencies."""
    packaging = pytest.importorskip("packaging.requirements")
    todo = [packaging.Requirement(r) for r in requirements]
    seen: dict[str, set[str]] = {}
    while todo:
        req = todo.pop()
        name = _norm(req.name)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        extras = set(req.extras)
        if name in seen and extras <= seen[name]:
            continue
        seen.setdefault(name, set()).update(extras)
        try:
            deps = md.requires(req.name) or []
        except md.PackageNotFoundError:
            continue
        for d in deps:
            r = packaging.Requirement(d)
            if r.marker is None or any(r.marker.evaluate({"extra": e}) for e in ("", *extras)):
                r.marker = None
                todo.append(r)
    return set(seen)


def not_installed_by(*extras):
    """Top-level modules of this environment that the base install (plus ``extras``) would not have."""
    project = _pyproject()
    allowed = _closure(project["dependencies"] + [r for e in extras for r in project["optional-dependencies"][e]])
    blocked = {
        mod
        for mod, dists in md.packages_distributions().items()
        if not any(_norm(d) in allowed for d in dists) and mod != "clarion"
    }
    return blocked


def test_base_dependencies_are_those_every_cli_job_imports():
    project = _pyproject()
    base = {_norm(re.split(r"[<>=!~\[ ;]", r)[0]) for r in project["dependencies"]}
    # the CSV fast path and Parquet (pyarrow), the k-means SHAP baseline (scikit-learn), YAML configs
    assert {"numpy", "pandas", "pyarrow", "scikit-learn", "pyyaml", "jmespath"} <= base
    # a subcommand's optional packages: each is in the extra the CLI's message names
    for module, extra in cli.OPTIONAL_MODULES.items():
        names = {_norm(re.split(r"[<>=!~\[ ;]", r)[0]) for r in project["optional-dependencies"][extra]}
        dists = {_norm(d) for d in md.packages_distributions().get(module, [])} or {
            {"cupy": "cupy-cuda13x", "sklego": "scikit-lego"}.get(module, module)
        }
        assert dists & names, (module, extra, names)
        assert not dists & base, module  # not an optional package after all


@pytest.fixture(scope="module")
def served_model():
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    from clarion.serve import ModelServer

    df = data()
    with ModelServer(fit(df)) as url:
        yield df, url


def test_every_cli_job_runs_from_the_base_install(served_model, tmp_path):
    """analyze (CSV, JSON Lines, Parquet, a YAML config; bias, SHAP with its k-means baseline, PDP),
    monitor and report, in an interpreter that cannot import anything outside the base dependencies
    (the model is an HTTP endpoint, which needs no model library)."""
    yaml = pytest.importorskip("yaml")
    df, url = served_model
    blocked = not_installed_by()
    assert {"starlette", "xgboost", "sklego", "dask"} & blocked  # the check checks something here
    assert not {"pyarrow", "sklearn", "yaml", "pandas"} & blocked
    df.to_csv(tmp_path / "d.csv", index=False)
    with open(tmp_path / "d.jsonl", "w") as fh:
        fh.writelines(
            json.dumps({"features": [r.x1, int(r.x2), r.g], "label": int(r.y)}) + "\n"
            for r in df.itertuples(index=False)
        )
    df.to_parquet(tmp_path / "d.parquet", index=False)
    (tmp_path / "c.json").write_text(json.dumps(config()))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config()))
    (tmp_path / "c_jsonl.json").write_text(
        json.dumps(
            bias_only(
                dataset_type="application/jsonlines", features="features", label="label", headers=["x1", "x2", "g", "y"]
            )
        )
    )
    (tmp_path / "c_parquet.json").write_text(json.dumps(bias_only(dataset_type="application/x-parquet")))
    jobs = [
        [
            "analyze",
            "--config",
            tmp_path / "c.json",
            "--data",
            tmp_path / "d.csv",
            "--output",
            tmp_path / "csv",
            "--endpoint",
            url,
            "--quiet",
        ],
        [
            "analyze",
            "--config",
            tmp_path / "c.yaml",
            "--data",
            tmp_path / "d.csv",
            "--output",
            tmp_path / "yaml",
            "--endpoint",
            url,
            "--quiet",
        ],
        [
            "analyze",
            "--config",
            tmp_path / "c_jsonl.json",
            "--data",
            tmp_path / "d.jsonl",
            "--output",
            tmp_path / "jsonl",
            "--quiet",
        ],
        [
            "analyze",
            "--config",
            tmp_path / "c_parquet.json",
            "--data",
            tmp_path / "d.parquet",
            "--output",
            tmp_path / "parquet",
            "--quiet",
        ],
        [
            "monitor",
            "--baseline",
            tmp_path / "csv" / "analysis.json",
            "--data",
            tmp_path / "d.csv",
            "--config",
            tmp_path / "c.json",
            "--output",
            tmp_path / "mon",
            "--endpoint",
            url,
            "--quiet",
        ],
        ["report", tmp_path / "csv" / "analysis.json", "-o", tmp_path / "again.html"],
    ]
    for job in jobs:
        proc = run_cli(*job, blocked=blocked)
        assert proc.returncode == EXIT_OK, (job[0], proc.stderr)
        assert "Traceback" not in proc.stderr
    doc = json.loads((tmp_path / "csv" / "analysis.json").read_text())
    assert set(doc["explanations"]) == {"kernel_shap", "pdp"}
    assert (tmp_path / "mon" / "constraint_violations.json").exists()
    assert (tmp_path / "again.html").exists()


def test_demo_steps_need_only_the_examples_extra(tmp_path):
    """The demo's own imports (data set, model training, the .skops file and loading it back) work
    with the base install plus ``[examples]`` (``.ci/run`` runs the whole demo installed that way)."""
    pytest.importorskip("sklego")
    pytest.importorskip("skops")
    blocked = not_installed_by("examples")
    assert not {"sklego", "sklearn", "skops"} & blocked
    code = textwrap.dedent(f"""
        import importlib.abc, json, os, sys
        blocked = set({sorted(blocked)!r})
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in blocked:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        sys.meta_path.insert(0, Block())
        from clarion import demo, models
        import skops.io as sio
        df = demo.load_data().iloc[:400]
        model = demo.train_model(df)
        p = os.path.join({str(tmp_path)!r}, "m.skops")
        sio.dump(model, p)
        print(models.as_model(p).predict(df[demo.FEATURES].iloc[:3]).shape)
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env(), timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "(3, 2)"


def test_subcommand_without_its_extra_names_the_extra(tmp_path):
    (tmp_path / "mymodel.py").write_text("def predict(X):\n    return X\n")
    proc = run_cli("serve", "mymodel:predict", "--port", "0", cwd=tmp_path, blocked={"starlette", "uvicorn"})
    assert_one_line_error(proc, "pip install 'clarion[serve]'", command="serve")
    df = data()
    df.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "c.json").write_text(json.dumps(bias_only()))
    proc = run_cli(
        "analyze",
        "--config",
        tmp_path / "c.json",
        "--data",
        tmp_path / "d.csv",
        "--output",
        tmp_path / "o",
        "--dask-workers",
        "1",
        "--quiet",
        blocked={"dask", "distributed"},
    )
    assert_one_line_error(proc, "pip install 'clarion[dask]'", command="analyze")
    assert not (tmp_path / "o").exists()


def test_missing_module_message_names_the_extra_of_the_command():
    def missing(name):
        try:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        except ModuleNotFoundError as inner:
            try:
                raise ImportError("clarion demo needs scikit-lego") from inner
            except ImportError as exc:
                return exc

    assert cli._message(missing("sklego.datasets"), "demo") == cli.MSG_MISSING_EXTRA.format(
        module="sklego", extra="examples"
    )
    assert "clarion[models]" in cli._message(missing("xgboost"), "analyze")
    assert "clarion[examples]" in cli._message(missing("skops"), "demo")
    assert "reinstall clarion" in cli._message(missing("pyarrow"), "analyze")  # a base dependency


def test_ci_installs_the_wheel_as_the_readme_says():
    """``.ci/run`` builds one wheel and runs the README's first command in an environment that has
    exactly ``[examples]``, and the tests in another."""
    with open(os.path.join(ROOT, ".ci", "run")) as fh:
        ci = fh.read()
    with open(os.path.join(ROOT, "README.md")) as fh:
        readme = fh.read()
    first = next(ln for ln in readme.splitlines() if ln.startswith("pip install"))
    assert "pip install '.[examples]' && clarion demo --output" in first
    code = [ln.split(" #")[0].strip() for ln in ci.splitlines() if not ln.lstrip().startswith("#")]
    assert sum("pip wheel" in ln for ln in code) == 1  # one build
    installs = [i for i, ln in enumerate(code) if "pip install" in ln and "${wheel}" in ln]
    assert [code[i].split("${wheel}")[1].split('"')[0] for i in installs] == ["[examples]", "[test,examples]"]
    demo = next(i for i, ln in enumerate(code) if ln.startswith("clarion demo --output"))
    tests = next(i for i, ln in enumerate(code) if ln.startswith("python -m pytest"))
    assert installs[0] < demo < installs[1] < tests
    # two fresh environments for clarion (the linters' own .venv-lint holds no clarion)
    venvs = [i for i, ln in enumerate(code) if "-m venv --clear" in ln and ".venv-lint" not in ln]
    assert len(venvs) == 2 and venvs[0] < installs[0] < venvs[1] < installs[1]


# ---- item 16: an output folder is replaced only by a run that succeeded ----------------------------


class Failing:
    """A model that works for ``good`` calls, then raises ``exc``."""

    output_names = ("0", "1")

    def __init__(self, good, exc):
        self.good, self.exc, self.calls = good, exc, 0

    def __call__(self, X):
        self.calls += 1
        if self.calls > self.good:
            raise self.exc
        x = np.asarray(X[["x1", "x2"]] if hasattr(X, "columns") else np.asarray(X)[:, :2], dtype=float)
        p = 1 / (1 + np.exp(-x.sum(axis=1)))
        return np.column_stack([1 - p, p])


@pytest.fixture
def previous(tmp_path):
    """An output folder of a successful run (bias, SHAP, PDP) plus a file of the user's."""
    df = data()
    df.to_csv(tmp_path / "d.csv", index=False)
    out = tmp_path / "out"
    A.analyze(config(), tmp_path / "d.csv", model=Failing(10**9, None), output_dir=out, progress=False)
    (out / "my notes.txt").write_text("mine")
    return tmp_path, out, snapshot(out)


@pytest.mark.parametrize("good", [0, 1, 3])  # fails before the first model call, in pass 1, in SHAP
def test_failed_overwrite_keeps_the_previous_results(previous, good):
    tmp, out, before = previous
    with pytest.raises(RuntimeError, match="model broke"):
        A.analyze(
            config(),
            tmp / "d.csv",
            model=Failing(good, RuntimeError("model broke")),
            output_dir=out,
            progress=False,
            overwrite=True,
        )
    assert snapshot(out) == before
    assert leftovers(tmp) == []


def test_interrupted_overwrite_keeps_the_previous_results(previous):
    tmp, out, before = previous
    with pytest.raises(KeyboardInterrupt):
        A.analyze(
            config(),
            tmp / "d.csv",
            model=Failing(2, KeyboardInterrupt()),
            output_dir=out,
            progress=False,
            overwrite=True,
        )
    assert snapshot(out) == before
    assert leftovers(tmp) == []


def test_cli_failed_overwrite_with_a_bad_model_keeps_the_previous_results(previous, capsys):
    tmp, out, before = previous
    (tmp / "c.json").write_text(json.dumps(config(predictor={"probability": 1, "model_uri": "nowhere.skops"})))
    code = main(
        [
            "analyze",
            "--config",
            str(tmp / "c.json"),
            "--data",
            str(tmp / "d.csv"),
            "--output",
            str(out),
            "--overwrite",
            "--quiet",
        ]
    )
    assert code == EXIT_ERROR
    assert "nowhere.skops" in capsys.readouterr().err
    assert snapshot(out) == before
    assert leftovers(tmp) == []


def test_successful_overwrite_leaves_no_file_of_the_previous_run(previous):
    tmp, out, _ = previous
    cfg = bias_only()
    cfg["methods"]["report"] = {"name": "second", "title": "t"}
    res = A.analyze(cfg, tmp / "d.csv", output_dir=out, progress=False, overwrite=True)
    from clarion.report import missing_formats

    optional = [f"second.{ext}" for ext in ("ipynb", "pdf") if ext not in missing_formats()]  # issue 17
    assert sorted(os.listdir(out)) == sorted(
        ["analysis.json", "analysis_config.json", "my notes.txt", "second.html", "second.md", *optional]
    )  # no report.*, no explanations_shap/
    assert (out / "my notes.txt").read_text() == "mine"
    assert res.output_dir == os.fspath(out)
    assert res.paths["report_html"] == os.path.join(out, "second.html")
    assert all(os.path.exists(p) for p in res.paths.values())
    assert leftovers(tmp) == []


def test_a_new_output_folder_appears_only_when_the_run_succeeded(tmp_path):
    data().to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(RuntimeError):
        A.analyze(
            config(),
            tmp_path / "d.csv",
            model=Failing(2, RuntimeError("x")),
            output_dir=tmp_path / "new",
            progress=False,
        )
    assert not (tmp_path / "new").exists() and leftovers(tmp_path) == []
    A.analyze(bias_only(), tmp_path / "d.csv", output_dir=tmp_path / "new", progress=False)  # no --overwrite needed
    assert (tmp_path / "new" / "analysis.json").exists()


def test_stale_report_name_outside_the_folder_is_never_removed(previous):
    """The previous run's report name comes from a file in the folder: it may not reach outside."""
    tmp, out, _ = previous
    victim = tmp / "victim.html"
    victim.write_text("keep")
    cfg_path = out / "analysis_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["methods"]["report"]["name"] = "../victim"
    cfg_path.write_text(json.dumps(cfg))
    A.analyze(bias_only(), tmp / "d.csv", output_dir=out, progress=False, overwrite=True)
    assert victim.read_text() == "keep"


def test_monitor_failed_overwrite_keeps_the_previous_results(previous, capsys):
    tmp = previous[0]
    cfg = bias_only()
    (tmp / "c.json").write_text(json.dumps(cfg))
    base = tmp / "base"
    A.analyze(cfg, tmp / "d.csv", output_dir=base, progress=False)
    args = [
        "monitor",
        "--baseline",
        str(base / "analysis.json"),
        "--config",
        str(tmp / "c.json"),
        "--output",
        str(tmp / "mon"),
        "--quiet",
    ]
    assert main([*args, "--data", str(tmp / "d.csv")]) == EXIT_OK
    before = snapshot(tmp / "mon")
    (tmp / "bad.csv").write_text("x1,x2,g,y\n1,2,a,1\n1,2,b,0\n1,2,b,1\n1,two,a,1\n")
    assert main([*args, "--data", str(tmp / "bad.csv"), "--overwrite"]) == EXIT_ERROR
    assert "bad.csv" in capsys.readouterr().err
    assert snapshot(tmp / "mon") == before
    assert leftovers(tmp) == []


def test_demo_failure_leaves_nothing_that_blocks_a_rerun(tmp_path, monkeypatch):
    from clarion import demo

    monkeypatch.setattr(demo, "load_data", lambda: data().rename(columns={"y": "released"}))

    def broken(df, seed=0):
        raise RuntimeError("training failed")

    monkeypatch.setattr(demo, "train_model", broken)
    with pytest.raises(RuntimeError, match="training failed"):
        demo.run_demo(tmp_path / "demo", progress=False)
    assert os.listdir(tmp_path) == []  # no half-written folder, no temporary one


def test_output_written_into_folder_with_existing_mode(tmp_path):
    data().to_csv(tmp_path / "d.csv", index=False)
    out = tmp_path / "out"
    out.mkdir(mode=0o750)
    os.chmod(out, 0o750)
    A.analyze(bias_only(), tmp_path / "d.csv", output_dir=out, progress=False)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o750


# ---- item 20: output files honour the umask --------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_output_files_honour_the_umask(tmp_path, umask):
    df = data()
    df.to_parquet(tmp_path / "d.parquet", index=False)  # Parquet in: out.parquet out as well
    cfg = config(dataset_type="application/x-parquet")
    cfg["methods"]["shap"]["save_local_shap_values"] = True
    old = os.umask(umask)
    try:
        A.analyze(cfg, tmp_path / "d.parquet", model=Failing(10**9, None), output_dir=tmp_path / "out", progress=False)
        from clarion._io import atomic_write_text

        atomic_write_text(tmp_path / "single.txt", "x")
    finally:
        os.umask(old)
    files = {
        os.path.relpath(os.path.join(d, f), tmp_path): stat.S_IMODE(os.stat(os.path.join(d, f)).st_mode)
        for d, _, fs in os.walk(tmp_path)
        for f in fs
        if f != "d.parquet"
    }
    assert "out/explanations_shap/out.csv" in files and "out/explanations_shap/out.parquet" in files
    assert files == dict.fromkeys(files, 0o666 & ~umask)
    for d in (tmp_path / "out", tmp_path / "out" / "explanations_shap"):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o777 & ~umask


# ---- item 21: one line, never a traceback ----------------------------------------------------------


def test_endpoint_error_is_one_line(tmp_path):
    """An endpoint that refuses the request (4xx): EndpointError, which the CLI did not catch."""
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    from clarion.serve import ModelServer

    def refuse(X):
        raise ValueError("this model refuses every request")

    data().to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "c.json").write_text(json.dumps(config()))
    with ModelServer(refuse) as url:
        proc = run_cli(
            "analyze",
            "--config",
            tmp_path / "c.json",
            "--data",
            tmp_path / "d.csv",
            "--output",
            tmp_path / "o",
            "--endpoint",
            url,
            "--quiet",
        )
    assert_one_line_error(proc, url.split("/invocations")[0], command="analyze")
    assert not (tmp_path / "o").exists()


def test_huge_n_bootstrap_is_one_line(tmp_path):
    """A bootstrap too large to hold: refused up front or MemoryError, never a traceback (the
    child's address space is capped so nothing is really allocated)."""
    resource = pytest.importorskip("resource")
    data().to_csv(tmp_path / "d.csv", index=False)
    cfg = bias_only()
    cfg["methods"]["pre_training_bias"].update(confidence=0.95, n_bootstrap=10**12)
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    code = textwrap.dedent("""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))
        from clarion.cli import main
        sys.exit(main(sys.argv[1:]))
    """)
    assert resource.RLIM_INFINITY is not None
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "analyze",
            "--config",
            str(tmp_path / "c.json"),
            "--data",
            str(tmp_path / "d.csv"),
            "--output",
            str(tmp_path / "o"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=env(),
        timeout=600,
        check=False,
    )
    line = assert_one_line_error(proc, command="analyze")
    assert "n_bootstrap" in line or "out of memory" in line


@pytest.mark.parametrize(
    ("setup", "needle"),
    [
        ("config_not_json", "c.json"),
        ("data_missing", "missing.csv"),
        ("pickle_as_skops", ""),
        ("report_not_json", "a.json"),
    ],
)
def test_malformed_files_are_one_line(tmp_path, setup, needle):
    data().to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "c.json").write_text(json.dumps(config()))
    args = [
        "analyze",
        "--config",
        tmp_path / "c.json",
        "--data",
        tmp_path / "d.csv",
        "--output",
        tmp_path / "o",
        "--quiet",
    ]
    if setup == "config_not_json":
        (tmp_path / "c.json").write_text("{not json")
    elif setup == "data_missing":
        args[4] = tmp_path / "missing.csv"
    elif setup == "pickle_as_skops":
        import pickle

        (tmp_path / "m.skops").write_bytes(pickle.dumps({"a": 1}))
        args += ["--model", tmp_path / "m.skops"]
    else:
        (tmp_path / "a.json").write_text("[1, 2")
        args = ["report", tmp_path / "a.json", "-o", tmp_path / "r.html"]
    proc = run_cli(*args)
    assert_one_line_error(proc, needle, command=args[0])


def _fake_command(monkeypatch, exc):
    mod = types.ModuleType("clarion_fake_command")
    mod.add_arguments = lambda parser: None

    def run(args):
        raise exc

    mod.run = run
    monkeypatch.setitem(sys.modules, "clarion_fake_command", mod)
    monkeypatch.setitem(cli.COMMANDS, "fake", ("clarion_fake_command", "a command that fails"))


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (
            MemoryError("Unable to allocate 7.28 TiB for an array"),
            cli.MSG_OUT_OF_MEMORY.format(detail="Unable to allocate 7.28 TiB for an array"),
        ),
        (ValueError("methods.shap.num_samples: must be positive"), "methods.shap.num_samples: must be positive"),
        (
            OSError(28, "No space left on device", "out/analysis.json"),
            "[Errno 28] No space left on device: 'out/analysis.json'",
        ),
    ],
)
def test_input_errors_are_one_line(monkeypatch, capsys, exc, expected):
    _fake_command(monkeypatch, exc)
    assert main(["fake"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err == f"clarion fake: error: {expected}\n"


def test_clarion_error_classes_are_one_line(monkeypatch, capsys):
    from clarion.models import EndpointError

    _fake_command(
        monkeypatch,
        EndpointError("endpoint http://h/invocations answered 400", first_row=0, status=400, server_message="no"),
    )
    assert main(["fake"]) == EXIT_ERROR
    assert capsys.readouterr().err == "clarion fake: error: endpoint http://h/invocations answered 400\n"


def test_internal_bugs_stay_visible(monkeypatch, capsys):
    """A bug (not bad input) says so, and --debug / CLARION_DEBUG=1 show its traceback."""
    _fake_command(monkeypatch, AttributeError("'NoneType' object has no attribute 'x'"))
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    assert main(["fake"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("clarion fake: error: internal error: AttributeError:") and "--debug" in err
    assert "Traceback" not in err
    for argv, environ in ((["--debug", "fake"], None), (["fake", "--debug"], None), (["fake"], "1")):
        if environ:
            monkeypatch.setenv(cli.DEBUG_ENV, environ)
        assert main(argv) == EXIT_ERROR
        err = capsys.readouterr().err
        assert "Traceback (most recent call last)" in err and "raise exc" in err
        assert err.rstrip().splitlines()[-1].startswith("clarion fake: error: internal error")


def test_keyboard_interrupt_exits_130(monkeypatch, capsys):
    _fake_command(monkeypatch, KeyboardInterrupt())
    assert main(["fake"]) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "clarion: interrupted\n"


def test_error_after_a_progress_bar_starts_on_its_own_line(monkeypatch, capsys):
    import io

    from clarion._progress import Progress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    monkeypatch.setattr(sys, "stderr", stream)
    bar = Progress("reading", total=10)
    bar.update(3)  # drawn in place, never closed: the task failed

    def run(args):
        raise ValueError("d.csv: line 3: bad")

    _fake_command(monkeypatch, ValueError("unused"))
    sys.modules["clarion_fake_command"].run = run
    assert main(["fake"]) == EXIT_ERROR
    assert stream.getvalue().splitlines()[-1] == "clarion fake: error: d.csv: line 3: bad"


def test_demo_without_skops_names_the_examples_extra(tmp_path, monkeypatch, capsys):
    """The demo's config names its model file (so it reruns from the CLI): without skops it stops
    with the extra to install instead of silently writing a config with no model."""
    from clarion import demo

    monkeypatch.setattr(demo, "load_data", lambda: data().rename(columns={"y": "released"}))
    monkeypatch.setattr(demo, "train_model", lambda df, seed=0: object())
    monkeypatch.setitem(sys.modules, "skops", None)
    monkeypatch.setitem(sys.modules, "skops.io", None)
    assert main(["demo", "--output", str(tmp_path / "demo"), "--quiet"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err == "clarion demo: error: " + cli.MSG_MISSING_EXTRA.format(module="skops", extra="examples") + "\n"
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("fail_at", [1, 4, 7, 9])  # moving the old files away, placing the new
def test_a_swap_that_fails_midway_puts_the_previous_folder_back(previous, monkeypatch, fail_at):
    """Even the final swap is all or nothing: a failure while moving files (disk full, ...) restores
    the previous results."""
    from clarion import _io

    tmp, out, before = previous
    real, calls = _io._move, []

    def move(src, dst):
        calls.append(src)
        if len(calls) == fail_at:
            raise OSError(28, "No space left on device", dst)
        real(src, dst)

    monkeypatch.setattr(_io, "_move", move)
    cfg = bias_only()
    cfg["methods"]["report"] = {"name": "second", "title": "t"}
    with pytest.raises(OSError, match="No space left"):
        A.analyze(cfg, tmp / "d.csv", output_dir=out, progress=False, overwrite=True)
    assert snapshot(out) == before
    assert leftovers(tmp) == []
