"""Small file helpers: every output file is written atomically (temp file + rename), and an output
folder is replaced only by a run that succeeded (:func:`staged_output_dir`).

Files and folders are created with the ordinary modes (``0o666`` / ``0o777``) less the process's
umask, like any other tool's output; :func:`tempfile.mkstemp` / :func:`tempfile.mkdtemp` would
make them private (``0600`` / ``0700``), which is right for secrets but not for results.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator

__all__ = ["atomic_write_bytes", "atomic_write_text", "create_temp_file", "staged_output_dir"]

#: prefix of the temporary sibling folder a run writes into (``.<name>.clarion-partial-…``)
STAGE_TAG = ".clarion-partial-"
#: prefix of the folder, inside the output folder, that holds the previous run's files while they
#: are being replaced (removed when the swap is done, put back when it fails)
BACKUP_TAG = ".clarion-previous-"


def create_temp_file(directory: str, suffix: str = "") -> tuple[int, str]:
    """``(fd, path)`` of a new, empty file in ``directory``, opened for writing, with mode
    ``0o666`` less the umask (unlike :func:`tempfile.mkstemp`, which makes it ``0600``)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        path = os.path.join(directory, f".tmp-{secrets.token_hex(6)}{suffix}")
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", directory)  # pragma: no cover


def _make_temp_dir(parent: str, prefix: str) -> str:
    """A new folder in ``parent`` with mode ``0o777`` less the umask."""
    for _ in range(100):
        path = os.path.join(parent, f"{prefix}{secrets.token_hex(6)}")
        try:
            os.mkdir(path, 0o777)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary folder name", parent)  # pragma: no cover


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = create_temp_file(directory, "-" + os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Text (UTF-8) version of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


# ---- output folders ---------------------------------------------------------------------------------


def _files(root: str) -> list[str]:
    """Paths (relative to ``root``) of every file and link under ``root``."""
    out = []
    for d, dirs, files in os.walk(root):
        for name in files + [x for x in dirs if os.path.islink(os.path.join(d, x))]:
            out.append(os.path.relpath(os.path.join(d, name), root))
    return sorted(out)


def _inside(root: str, rel: str) -> str | None:
    """``root/rel`` when ``rel`` is a relative path that stays inside ``root``, else None."""
    if not rel or os.path.isabs(rel):
        return None
    rel = os.path.normpath(rel)
    if rel == "." or rel.split(os.sep)[0] in ("..", ""):
        return None
    return os.path.join(root, rel)


def _move(src: str, dst: str) -> None:
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    try:
        os.replace(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.move(src, dst)  # another file system (the output folder is a mount point)


def _swap_in(stage: str, target: str, stale: Iterable[str]) -> None:
    """Put the files of ``stage`` into the existing folder ``target`` and remove ``stale`` (the
    previous run's files, relative paths) from it; the other files of ``target`` stay. On any
    failure ``target`` is put back as it was."""
    new = _files(stage)
    old = sorted(
        {r for r in (*stale, *new) if (p := _inside(target, r)) and os.path.lexists(p) and not os.path.isdir(p)}
    )
    backup = _make_temp_dir(target, BACKUP_TAG)
    moved: list[str] = []
    placed: list[str] = []
    try:
        for r in old:
            _move(os.path.join(target, r), os.path.join(backup, r))
            moved.append(r)
        for r in new:
            _move(os.path.join(stage, r), os.path.join(target, r))
            placed.append(r)
    except BaseException:
        for r in placed:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(target, r))
        for r in moved:
            with contextlib.suppress(OSError):
                _move(os.path.join(backup, r), os.path.join(target, r))
        shutil.rmtree(backup, ignore_errors=True)
        raise
    shutil.rmtree(backup, ignore_errors=True)
    # folders the previous run made and this one did not fill (e.g. explanations_shap/)
    for r in sorted({os.path.dirname(os.path.normpath(r)) for r in old}, key=len, reverse=True):
        d = _inside(target, r)
        while d and d != target and os.path.isdir(d) and not os.listdir(d):
            os.rmdir(d)
            d = os.path.dirname(d)


@contextlib.contextmanager
def staged_output_dir(path: str | os.PathLike, stale: Callable[[str], Iterable[str]] | None = None) -> Iterator[str]:
    """Run a job's writes in a temporary sibling folder of ``path``, swapped in only on success.

    Yields the folder to write into (``<parent>/.<name>.clarion-partial-<random>``). When the
    ``with`` block ends normally:

    * ``path`` does not exist: the folder is renamed to ``path`` (one atomic rename);
    * ``path`` exists: the files the block wrote replace those of the same name in ``path``, the
      files that ``stale(path)`` names (relative paths: the previous run's outputs) are removed, and
      every other file of ``path`` (the user's) stays, as does ``path``'s own mode.

    When the block raises (an error, ``KeyboardInterrupt``), the temporary folder is removed and
    ``path`` is left exactly as it was. The caller checks beforehand whether ``path`` may be
    written at all (see ``clarion.analysis``'s ``--overwrite`` rule).
    """
    target = os.path.abspath(os.fspath(path))
    if os.path.lexists(target) and not os.path.isdir(target):
        raise FileExistsError(f"output directory {os.fspath(path)} exists and is not a directory")
    parent, name = os.path.split(target)
    os.makedirs(parent, exist_ok=True)
    stage = _make_temp_dir(parent, f".{name}{STAGE_TAG}")
    try:
        yield stage
        if not os.path.exists(target):
            try:
                os.rename(stage, target)
                return
            except OSError:  # created meanwhile: swap into it below
                if not os.path.isdir(target):
                    raise
        _swap_in(stage, target, list(stale(target)) if stale is not None else [])
    finally:
        shutil.rmtree(stage, ignore_errors=True)
