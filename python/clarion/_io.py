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
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["atomic_write_bytes", "atomic_write_text", "create_temp_file", "staged_output_dir", "wait_for_removals"]

#: prefix of the temporary sibling folder a run writes into (``.<name>.clarion-partial-…``)
STAGE_TAG = ".clarion-partial-"
#: prefix of the folder, inside the output folder, that holds the previous run's files while they
#: are being replaced (removed when the swap is done, put back when it fails)
BACKUP_TAG = ".clarion-previous-"
#: suffix of the sibling folder (``.<name>.clarion-removed``) that holds, once a swap is done, the
#: replaced files and the emptied staging folder while a thread removes them (nothing in it is
#: needed by anyone: a later run into the same folder removes what a killed process left there)
TRASH_TAG = ".clarion-removed"

#: Files written into a staged output folder (:func:`staged_output_dir`) are ``fsync``-ed on a few
#: threads while the job goes on, and every one is on disk before the folder is swapped in; the
#: previous run's files are removed by a thread after the swap. Off: each file ``fsync``-ed as it is
#: written and the previous files removed before the run returns (the outputs, errors and folder
#: contents are the same either way; tests compare the two).
DEFERRED_SYNC = os.name == "posix"
#: fsyncs that may wait at once per staged folder (each holds its file open until done)
_MAX_PENDING_SYNCS = 64
#: A file that does not exist yet in a staged output folder is written under its own name (no
#: temporary name, no rename: ~0.05 ms a file, session 19); one written before in the same stage is
#: replaced through a temporary file as anywhere else. Off: every file through a temporary name
#: (the outputs are the same either way; tests compare the two).
STAGE_DIRECT = True
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)


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
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part.

    The data is on disk (``fsync``) before the file takes its name; inside a staged output folder
    (:func:`staged_output_dir`), where no reader looks before the swap, the ``fsync`` runs on a
    thread and the swap waits for it."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    syncs = _syncs_of(directory)
    if syncs is not None and STAGE_DIRECT:
        # a new file of the stage under its own name: no reader looks there before the swap, so
        # no temporary name and rename are needed (on an error the file is removed, so that a
        # caller that goes on past it leaves no part of it to be swapped in)
        try:
            fd = os.open(path, _NEW_FILE_FLAGS, 0o666)
        except FileExistsError:  # (written before in this stage: replaced whole, the usual way)
            pass
        else:
            try:
                _write_staged(fd, data, syncs)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                raise
            return
    fd, tmp = create_temp_file(directory, "-" + os.path.basename(path))
    try:
        if syncs is None:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        else:
            _write_staged(fd, data, syncs)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _write_staged(fd: int, data: bytes, syncs: _Syncs) -> None:
    """Write ``data`` into ``fd`` (a file of a staged folder), then hand it to ``syncs``: fsync-ed
    and closed on a thread, the swap waits for it. ``fd`` is closed on an error."""
    try:
        view = memoryview(data).cast("B")
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        raise
    syncs.add(fd)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Text (UTF-8) version of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


# ---- deferred fsyncs and removals --------------------------------------------------------------------

_LOCK = threading.Lock()
_POOL: Any = None  # the threads that fsync staged files and remove replaced ones (made on first use)
_STAGES: dict[str, _Syncs] = {}  # staged folder -> its files' pending fsyncs
_REMOVING: dict[str, int] = {}  # trash folder -> removals of this process under way in it
_REMOVALS: list[Any] = []  # their futures (see wait_for_removals)


def _pool() -> Any:
    global _POOL
    with _LOCK:
        if _POOL is None:
            from concurrent.futures import ThreadPoolExecutor

            _POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="clarion-io")
        return _POOL


def _forget_pool() -> None:  # a forked child has none of the parent's threads
    global _POOL
    _POOL = None
    _STAGES.clear()
    _REMOVING.clear()
    _REMOVALS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _sync_and_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Syncs:
    """The pending ``fsync``s of the files written into one staged folder."""

    def __init__(self) -> None:
        self.pending: list[Any] = []

    def add(self, fd: int) -> None:
        """``fsync`` and close ``fd`` on a thread (waits for the oldest beyond
        ``_MAX_PENDING_SYNCS``, so that a job writing many files holds few open)."""
        try:
            if len(self.pending) >= _MAX_PENDING_SYNCS:
                self.pending.pop(0).result()
            self.pending.append(_pool().submit(_sync_and_close, fd))
        except RuntimeError:  # no new thread work (the interpreter is shutting down): here and now
            _sync_and_close(fd)
        except BaseException:
            os.close(fd)
            raise

    def wait(self) -> None:
        """Wait for every pending ``fsync``; raise the first error met (after all are done)."""
        error = None
        while self.pending:
            exc = self.pending.pop(0).exception()
            if exc is not None and error is None:
                error = exc
        if error is not None:
            raise error


def _syncs_of(directory: str) -> _Syncs | None:
    """The pending fsyncs of the staged folder that holds ``directory`` (an absolute path), or None."""
    if not _STAGES:
        return None
    with _LOCK:
        for stage, syncs in _STAGES.items():
            if directory == stage or directory.startswith(stage + os.sep):
                return syncs
    return None


def _trash_of(target: str) -> str:
    """The sibling folder of ``target`` that holds what a finished swap left to remove."""
    parent, name = os.path.split(target)
    return os.path.join(parent, f".{name}{TRASH_TAG}")


def _remove_later(folders: list[tuple[str, list[str], list[str]]], trash: str) -> None:
    """Move ``folders`` (``(folder, files, moved)``: a folder of ``trash``'s file system, the files
    it holds and the files moved out of it, relative paths) into ``trash`` and remove them on a
    thread (``trash`` too once empty); a folder that cannot be moved is removed here and now."""
    kept = []
    for folder, files, moved in folders:
        try:
            os.makedirs(trash, exist_ok=True)
            dest = _make_temp_name(trash)
            os.rename(folder, dest)
            kept.append((dest, files, moved))
        except OSError:
            shutil.rmtree(folder, ignore_errors=True)
    if kept:
        with _LOCK:
            _REMOVING[trash] = _REMOVING.get(trash, 0) + 1
        _submit_removal(kept, trash)


def _remove_known(folder: str, files: list[str] | None, moved: list[str]) -> None:
    """Remove ``folder``, which holds ``files`` and the folders of ``files`` and ``moved`` (what a
    swap left there); anything else in it, any error, or ``files`` None (not known) goes the long
    way, ``shutil.rmtree``."""
    if files is None:
        shutil.rmtree(folder, ignore_errors=True)
        return
    try:
        for r in files:
            os.unlink(os.path.join(folder, r))
        dirs = set()
        for r in (*files, *moved):
            d = os.path.dirname(r)
            while d and d not in dirs:
                dirs.add(d)
                d = os.path.dirname(d)
        for d in sorted(dirs, key=len, reverse=True):  # (a folder's path is longer than its parent's)
            os.rmdir(os.path.join(folder, d))
        os.rmdir(folder)
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)


def _submit_removal(folders: list[tuple[str, Any, list[str]]], trash: str) -> None:
    future = _pool().submit(_remove_all, folders, trash)
    with _LOCK:
        _REMOVALS[:] = [f for f in _REMOVALS if not f.done()]
        _REMOVALS.append(future)


def wait_for_removals() -> None:
    """Wait until the removals of replaced output files that this process started are done (a
    finished run's previous files go on a thread; see :func:`staged_output_dir`)."""
    while True:
        with _LOCK:
            pending = [f for f in _REMOVALS if not f.done()]
            _REMOVALS[:] = pending
        if not pending:
            return
        for f in pending:
            f.exception()


def _remove_all(folders: list[tuple[str, Any, list[str]]], trash: str) -> None:
    """(On a thread.) Remove ``folders`` (see :func:`_remove_known`), then ``trash`` when that
    leaves it empty."""
    try:
        for folder, files, moved in folders:
            _remove_known(folder, files, moved)
        with contextlib.suppress(OSError):
            os.rmdir(trash)  # (not empty while another removal is under way: the last one removes it)
    finally:
        with _LOCK:
            left = _REMOVING.pop(trash, 1) - 1
            if left:
                _REMOVING[trash] = left


def _clean_trash(trash: str) -> None:
    """Remove ``trash`` on a thread when no removal of this process is under way in it: what a run
    killed after its swap left there (nothing in it is anyone's results)."""
    with _LOCK:
        if trash in _REMOVING:
            return
        _REMOVING[trash] = 1
    _submit_removal([(trash, None, [])], trash)  # (what is in it is not known: the long way)


def _make_temp_name(parent: str) -> str:
    """A name in ``parent`` that no entry has (for a folder moved there)."""
    for _ in range(100):
        path = os.path.join(parent, secrets.token_hex(6))
        if not os.path.lexists(path):
            return path
    raise FileExistsError(errno.EEXIST, "no free temporary name", parent)  # pragma: no cover


# ---- output folders ---------------------------------------------------------------------------------


def _files(root: str) -> list[str]:
    """Paths (relative to ``root``) of every file and link under ``root`` (as ``os.walk`` finds
    them: links to folders are not followed, folders that cannot be read are passed over)."""
    out: list[str] = []

    def walk(folder: str, rel: str) -> None:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return
        for e in entries:
            r = os.path.join(rel, e.name) if rel else e.name
            try:
                is_folder = e.is_dir(follow_symlinks=False)
            except OSError:
                is_folder = False
            if is_folder:
                walk(e.path, r)
            else:
                out.append(r)

    walk(root, "")
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


def _swap_in(
    stage: str, target: str, stale: Iterable[str], replaced: list[tuple[str, list[str], list[str]]] | None = None
) -> None:
    """Put the files of ``stage`` into the existing folder ``target`` and remove ``stale`` (the
    previous run's files, relative paths) from it; the other files of ``target`` stay. On any
    failure ``target`` is put back as it was.

    The replaced files go into a folder inside ``target`` first; it is removed here, or, with
    ``replaced`` (a list), appended to it for the caller to remove once the swap is done, with the
    emptied ``stage``: ``(folder, files it holds, files moved out of it)``."""
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
    if replaced is None:
        shutil.rmtree(backup, ignore_errors=True)
    else:
        replaced += [(backup, old, []), (stage, [], new)]
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

    With :data:`DEFERRED_SYNC` (POSIX), the files :func:`atomic_write_bytes` writes into the
    folder are ``fsync``-ed on a few threads while the block goes on, and the swap waits for all
    of them: no file takes a place in ``path`` before its data is on disk (an ``fsync`` error is
    raised there, and ``path`` stays as it was). After a successful swap the emptied temporary
    folder and the replaced files are renamed into ``<parent>/.<name>.clarion-removed`` and
    removed on a thread (:func:`wait_for_removals` waits for that; the interpreter waits for it
    at exit). Nothing in that folder is anyone's results: a process killed before the removal
    ended leaves it behind, and the next run into ``path`` removes it. A process killed during
    the run leaves ``path`` as it was (and its temporary ``.clarion-partial-`` folder, as before).
    """
    target = os.path.abspath(os.fspath(path))
    if os.path.lexists(target) and not os.path.isdir(target):
        raise FileExistsError(f"output directory {os.fspath(path)} exists and is not a directory")
    parent, name = os.path.split(target)
    os.makedirs(parent, exist_ok=True)
    stage = _make_temp_dir(parent, f".{name}{STAGE_TAG}")
    deferred = DEFERRED_SYNC
    trash = _trash_of(target)
    if deferred and os.path.lexists(trash):  # what a run killed after its swap left there
        _clean_trash(trash)
    syncs = _Syncs() if deferred else None
    if syncs is not None:
        with _LOCK:
            _STAGES[stage] = syncs
    replaced: list[tuple[str, list[str], list[str]]] | None = [] if deferred else None
    done = False
    try:
        yield stage
        # (the previous run's files are listed while the last fsyncs run)
        old = list(stale(target)) if stale is not None and os.path.isdir(target) else None
        if syncs is not None:
            _unregister(stage)
            syncs.wait()  # every file of the stage on disk before any takes a place in ``target``
        if not os.path.exists(target):
            try:
                os.rename(stage, target)
                done = True
                return
            except OSError:  # created meanwhile: swap into it below
                if not os.path.isdir(target):
                    raise
        if old is None:
            old = list(stale(target)) if stale is not None else []
        _swap_in(stage, target, old, replaced)
        done = True
    finally:
        if syncs is not None:
            _unregister(stage)
            with contextlib.suppress(BaseException):  # (another error is on its way: that one is raised)
                syncs.wait()
        if done and replaced:
            # the emptied stage and the replaced files: nobody's results any more, removed on a thread
            _remove_later(replaced, trash)
        else:
            shutil.rmtree(stage, ignore_errors=True)


def _unregister(stage: str) -> None:
    with _LOCK:
        _STAGES.pop(stage, None)
