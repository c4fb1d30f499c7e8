"""One way to write anything we keep: under a temporary sibling name, then moved into place in one step.

A reader (or a run killed half-way) therefore sees the old content or the new, never a mix. Used by the model
directory, training checkpoints, both caches, the last-model pointer and prediction CSVs.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def check_writable(path: Path, what: str, *, probe: bool = False) -> None:
    """Fail early, with a message naming ``path``, when ``path`` could not be written later: a file in the
    way of a directory on its path, or a directory that exists but may not be written to. ``probe``: also
    create (and remove) a directory where ``path`` would go, which permissions alone do not tell (/proc,
    /sys, a read-only mount; root passes every permission check)."""
    from sentiment.errors import SentimentError

    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing != path and not existing.is_dir():
        raise SentimentError(f"{what} {path} cannot be created: {existing} is a file, not a directory")
    folder = existing if existing.is_dir() else existing.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SentimentError(f"{what} {path} cannot be written: no write permission in {folder}")
    if probe:
        import tempfile

        try:
            os.rmdir(tempfile.mkdtemp(prefix=".sentiment-probe-", dir=folder))
        except OSError as exc:
            raise SentimentError(
                f"{what} {path} cannot be written: {exc.strerror or exc} in {folder}"
            ) from None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(target: Path, *, every_name: bool = False) -> None:
    """Remove what a killed writer left next to ``target`` (its staging file or directory, or .old
    directory): never in place. ``every_name``: also what writers of other names in the folder left."""
    name = "*" if every_name else target.name
    for pattern in (f".{name}.tmp-*", f".{name}.old-*"):
        for leftover in target.parent.glob(pattern):
            pid = leftover.name.rsplit("-", 1)[-1]
            if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
                if leftover.is_dir() and not leftover.is_symlink():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink(missing_ok=True)


@contextlib.contextmanager
def sigterm_cleans_up() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt, like Ctrl-C, so that a half-written file is removed on the way out.
    Only where SIGTERM would otherwise kill on the spot: a handler already installed (training's, which
    stops after the batch) is kept."""
    import signal
    import threading

    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _rename_exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _fsync_tree(directory: Path) -> None:
    for path in directory.rglob("*"):
        if path.is_file():
            with path.open("rb") as fh:
                os.fsync(fh.fileno())


@contextlib.contextmanager
def _parent_locked(target: Path) -> Iterator[None]:
    """An exclusive lock on ``target``'s directory while a commit looks at ``target`` and moves things: two
    runs committing to the same place at once then take turns (the later one replaces the earlier), where
    both would otherwise find no ``target`` and the second rename fail. A no-op where flock does not exist."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    fd = os.open(target.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def commit_dir(staging: Path, target: Path) -> None:
    """Move a fully written ``staging`` directory to ``target``, replacing a previous one atomically."""
    _fsync_tree(staging)
    with _parent_locked(target):
        if not target.exists():
            os.rename(staging, target)
        elif target.is_dir() and _rename_exchange(staging, target):
            shutil.rmtree(staging)  # now holds the previous content
        else:
            # Fallback: two renames; the previous content stays on disk (as .old) until the new one is in
            # place.
            old = target.parent / f".{target.name}.old-{os.getpid()}"
            os.rename(target, old)
            os.rename(staging, target)
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:  # a file where the directory belongs
                old.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        fd = os.open(target.parent, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)


@contextlib.contextmanager
def atomic_dir(target: Path, *, keep_existing: bool = False) -> Iterator[Path]:
    """Yield an empty staging directory; when the block ends without error it becomes ``target``.

    ``keep_existing``: a cache entry that another process wrote meanwhile holds the same content, so keep it
    and drop ours. On any error (Ctrl-C included) the staging directory goes and ``target`` is untouched.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target)
    staging = target.parent / f".{target.name}.tmp-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    try:
        yield staging
        if keep_existing and target.exists():  # another writer made the entry: same content, keep it
            shutil.rmtree(staging)
        else:
            commit_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """An open file (text: UTF-8, newlines untranslated) that replaces ``path`` in one step when the block
    ends without error; on any error (SIGTERM included) ``path`` is untouched and nothing is left beside it.

    A symbolic link is followed: the file it points to is replaced, the link stays. A path that is no regular
    file (a FIFO, /dev/stdout, /dev/null) is written in place: there is nothing to replace."""
    options: dict[str, Any] = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
    if path.exists() and not path.is_file() and not path.is_dir():  # through links: /dev/stdout to a pipe
        with path.open(mode, **options) as fh:
            yield fh
        return
    if path.is_symlink():
        path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    try:
        with sigterm_cleans_up(), tmp.open(mode, **options) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: str | bytes) -> None:
    """Replace the file ``path`` with ``data`` in one step."""
    if not isinstance(data, str | bytes):
        raise TypeError(f"write_atomic takes str or bytes, not {type(data).__name__}")
    with atomic_file(path, "w" if isinstance(data, str) else "wb") as fh:
        fh.write(data)
