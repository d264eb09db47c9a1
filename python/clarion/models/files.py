"""Model files: what a file holds, refusing pickles, and loading native formats safely.

Model files are loaded only through formats that hold data, not code: xgboost's JSON/UBJSON, ONNX,
and skops (which refuses every type not on its trusted list). Pickle and joblib files (``.pkl``,
``.pickle``, ``.joblib``...) are refused: unpickling runs arbitrary code, and a model path may come
from a config file. Native loaders (xgboost, onnxruntime) first load a file in a child process with
a memory cap and a time limit (:func:`check_in_child`), so a damaged file cannot crash this one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import Any

__all__ = [
    "MODEL_CHECK_MEMORY",
    "MODEL_CHECK_TIMEOUT",
    "MSG_MODEL_FILE_BAD",
    "MSG_MODEL_FILE_PICKLE",
    "MSG_PICKLE",
    "MSG_SKOPS_UNTRUSTED",
    "PICKLE_SUFFIXES",
    "ModelFileError",
    "check_in_child",
    "load_skops",
    "sniff",
]

MSG_PICKLE = (
    "refusing to load {path!r}: pickle/joblib files run arbitrary code when loaded, and clarion never "
    "unpickles anything that a config or data file can point to. Save the model with skops "
    "(skops.io.dump -> .skops), xgboost (save_model -> .json/.ubj) or ONNX (.onnx), or pass the "
    "fitted Python object itself to as_model"
)
MSG_SKOPS_UNTRUSTED = (
    "refusing to load {path!r}: it contains types that skops does not trust by default: {types}. "
    "If you trust this file, name each of them as a trusted type: the config key "
    "predictor.trusted_types, the command-line flag --trusted TYPE (repeatable; clarion analyze, "
    "clarion monitor, clarion serve) or as_model(path, trusted=[...])"
)
MSG_MODEL_FILE_BAD = "cannot load the model file {path!r} as {fmt}: {why}. The file holds {what}"
MSG_MODEL_FILE_PICKLE = (
    "refusing to load {path!r}: its name says {fmt}, but the file holds a pickle (Python's object "
    "serialisation, which runs arbitrary code when loaded: a pickle renamed?). "
    "Save the model with skops (skops.io.dump -> .skops), xgboost (save_model -> .json/.ubj) or ONNX "
    "(.onnx), or pass the fitted Python object itself to as_model"
)


class ModelFileError(ValueError):
    """A model file that cannot be loaded: damaged, of another format than its name says, or one
    whose loader crashed, ran out of memory or time in the child process that checks it first.

    Attributes
    ----------
    path : str
        The model file.
    """

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


_PICKLE_CONTENT = "a pickle (Python object serialisation)"


def sniff(path: str) -> str:
    """What a file really holds, from its first bytes (for error messages)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as exc:
        return f"nothing readable ({exc.strerror or exc})"
    if not head:
        return "nothing (it is empty)"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "a ZIP archive"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return _PICKLE_CONTENT
    if head.startswith(b"\x1f\x8b"):
        return "gzip-compressed data"
    if head[:1] == b"{" and head[1:2] in (b"L", b"l", b"i", b"U", b"I", b"$", b"#", b"}"):
        return "UBJSON (xgboost's binary model format)"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] in (b"{", b"["):
        return "JSON text"
    if head[:1] == b"\x08":
        return "binary protobuf data (as in an ONNX model)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "binary data of no format clarion recognises"
    if any(ord(c) < 32 and c not in "\t\r\n" for c in text):
        return "binary data of no format clarion recognises"
    return "text that is not JSON"


def _why(exc: BaseException) -> str:
    """The first meaningful line of a loader's error (xgboost prefixes time and source file)."""
    text = str(exc).strip() or type(exc).__name__
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("Stack trace")]
    first = lines[0] if lines else text
    first = re.sub(r"^\[\d\d:\d\d:\d\d\]\s*", "", first)
    first = re.sub(r"^\S+\.(?:cc|h|cpp|hpp|py):\d+:\s*", "", first)
    first = "".join(c if c.isprintable() else repr(c)[1:-1] for c in first)
    return first[:500]


# Loading native model files (xgboost JSON/UBJSON, ONNX) runs C++ parsers that can crash the
# process (SIGSEGV) or try to allocate absurd amounts of memory on a damaged file. A model path can
# come from a config file, so each such file is first loaded in a child process with a memory cap
# and a time limit; only a file that loads there is loaded in-process. Each file is checked once
# per process (keyed by path, size and modification time).
_CHILD_SCRIPT = r"""
import json, sys
kind, path, cap = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    import resource
except ImportError:  # not on this platform: the time limit still holds
    resource = None
for name, value in (("RLIMIT_AS", cap), ("RLIMIT_CORE", 0)):
    try:
        resource.setrlimit(getattr(resource, name), (value, value))
    except (AttributeError, ValueError, OSError):
        pass
def answer(**kw):
    sys.stdout.write(json.dumps(kw))
    sys.stdout.flush()
try:
    import numpy
    if kind == "xgboost":
        import xgboost
        booster = xgboost.Booster(model_file=path)
        n = booster.num_features()
        booster.feature_names
        booster.attr("scikit_learn")
        if 0 < n <= 1_000_000:  # one prediction: a model that loads but crashes when used is caught too
            try:
                booster.inplace_predict(numpy.zeros((1, n), dtype=numpy.float32))
            except Exception:  # a Python error here is raised, cleanly, by the real call too
                pass
    else:
        import onnxruntime
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        kinds = {"tensor(float)": numpy.float32, "tensor(double)": numpy.float64, "tensor(int64)": numpy.int64,
                 "tensor(int32)": numpy.int32}
        feeds = {}
        for i in session.get_inputs():
            dims = [d if isinstance(d, int) and 0 < d <= 1_000_000 else 1 for d in (i.shape or [])]
            if i.type not in kinds or numpy.prod(dims) > 10_000_000:
                feeds = None
                break
            feeds[i.name] = numpy.zeros(dims, dtype=kinds[i.type])
        session.get_outputs()
        if feeds:
            try:
                session.run(None, feeds)
            except Exception:
                pass
except MemoryError:
    answer(ok=False, error="loading it needs more memory than the check allows", memory=True)
except BaseException as exc:
    text = str(exc) or type(exc).__name__
    answer(ok=False, error=text[:4000], memory="bad_alloc" in text or "bad alloc" in text)
else:
    answer(ok=True)
"""

#: seconds the child that checks a model file may take (plus one per MB of the file)
MODEL_CHECK_TIMEOUT = 120.0
#: address space the child that checks a model file may use (plus 64 bytes per byte of the file)
MODEL_CHECK_MEMORY = 8 << 30

_checked_files: dict[tuple[str, int, int], None] = {}
_checked_lock = threading.Lock()


def _check_cache_entry(path: str, kind: str, version: str) -> str | None:
    """The on-disk record that a file with these exact bytes loaded with this library version
    (``$CLARION_CACHE_DIR``, else ``$XDG_CACHE_HOME/clarion``, else ``~/.cache/clarion``)."""
    import hashlib

    root = os.environ.get("CLARION_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "clarion"
    )
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    safe = re.sub(r"[^0-9A-Za-z.+-]", "_", version)
    return os.path.join(root, "model-checks", f"{kind}-{safe}-{h.hexdigest()}")


def check_in_child(path: str, kind: str, version: str = "") -> None:
    """Load ``path`` in a child process first; raise :class:`ModelFileError` when it fails there.

    A file that loaded is remembered in this process (path, size, modification time) and on disk
    (its SHA-256 and the loader's version), so the check costs one child process per new file."""
    st = os.stat(path)
    key = (os.path.realpath(path), int(st.st_mtime_ns), int(st.st_size))
    with _checked_lock:
        if key in _checked_files:
            return
    entry = _check_cache_entry(path, kind, version)
    if entry is not None and os.path.exists(entry):
        with _checked_lock:
            _checked_files[key] = None
        return
    fmt = "an xgboost model (JSON / UBJSON)" if kind == "xgboost" else "an ONNX model"
    cap = MODEL_CHECK_MEMORY + 64 * int(st.st_size)
    timeout = MODEL_CHECK_TIMEOUT + st.st_size / 1e6
    # the child finds the loader where this process found it
    paths = [p for p in sys.path if p and os.path.isdir(p)]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(paths))
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD_SCRIPT, kind, os.path.abspath(path), str(cap)],
            check=False,
            capture_output=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        why = f"its loader did not finish within {timeout:.0f} s (checked in a child process)"
        raise ModelFileError(
            MSG_MODEL_FILE_BAD.format(path=path, fmt=fmt, why=why, what=sniff(path)), path=path
        ) from None
    try:
        doc = json.loads(proc.stdout.decode("utf-8", "replace") or "null")
    except ValueError:
        doc = None
    if isinstance(doc, dict) and doc.get("ok") is True and proc.returncode == 0:
        with _checked_lock:
            _checked_files[key] = None
        if entry is not None:
            try:
                os.makedirs(os.path.dirname(entry), exist_ok=True)
                with open(entry, "w") as f:
                    f.write(os.path.abspath(path) + "\n")
            except OSError:
                pass  # no cache: the next process checks the file again
        return
    if isinstance(doc, dict) and doc.get("ok") is False:
        if doc.get("memory"):
            why = f"its loader asked for more than {cap / 2**30:.0f} GiB of memory (a damaged or truncated file?)"
        else:
            why = _why(RuntimeError(str(doc.get("error"))))
            if kind == "xgboost" and ("ModuleNotFoundError" in why or "No module named" in why):
                why = f"the checking process cannot import xgboost: {why}"
    elif proc.returncode < 0:
        import signal

        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        why = (
            f"its loader crashed ({name}) when a child process loaded it, so clarion does not load it "
            "(a damaged or truncated file?)"
        )
    else:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        why = (
            f"the child process that loads it first exited with status {proc.returncode}"
            + (f": {err[-1][:300]}" if err else "")
            + " (a damaged or truncated file?)"
        )
    raise ModelFileError(MSG_MODEL_FILE_BAD.format(path=path, fmt=fmt, why=why, what=sniff(path)), path=path)


#: file name endings of pickle/joblib files, which are never loaded
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".sav", ".dill", ".cloudpickle")


def load_skops(path: str, trusted: Sequence[str] | None = None) -> Any:
    """The object in a ``.skops`` file, loaded with skops' trusted-types API.

    Parameters
    ----------
    path : str
        The ``.skops`` file (a ZIP archive).
    trusted : sequence of str, optional
        Types to trust besides skops' defaults.

    Raises
    ------
    ImportError
        skops is not installed.
    ModelFileError
        The file is a pickle, not a ZIP archive, or an archive skops cannot read.
    ValueError
        The file holds types that are not trusted (``MSG_SKOPS_UNTRUSTED``).
    """
    try:
        import skops.io as sio
    except ImportError as exc:
        raise ImportError(f"loading {path!r} needs skops (pip install skops)") from exc
    allowed = list(trusted or [])
    fmt = "a skops file (a ZIP archive)"
    what = sniff(path)
    if what == _PICKLE_CONTENT:
        raise ModelFileError(MSG_MODEL_FILE_PICKLE.format(path=path, fmt=fmt), path=path)
    if what != "a ZIP archive":
        raise ModelFileError(
            MSG_MODEL_FILE_BAD.format(path=path, fmt=fmt, why="it is not a ZIP archive", what=what), path=path
        )
    try:
        untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in allowed]
    except Exception as exc:  # noqa: BLE001 - a damaged archive, or a ZIP without skops' schema
        raise ModelFileError(
            MSG_MODEL_FILE_BAD.format(path=path, fmt=fmt, why=_why(exc), what=what), path=path
        ) from None
    if untrusted:
        raise ValueError(MSG_SKOPS_UNTRUSTED.format(path=path, types=untrusted))
    try:
        return sio.load(path, trusted=allowed or None)
    except Exception as exc:  # noqa: BLE001 - whatever the damaged file makes skops raise
        raise ModelFileError(
            MSG_MODEL_FILE_BAD.format(path=path, fmt=fmt, why=_why(exc), what=what), path=path
        ) from None
