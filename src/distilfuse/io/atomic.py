"""Atomic writing: a recognisable partial file beside the target, flushed to disk, then renamed over it.

Partial files are named `.NAME.distilfuse-partial-PID-XXXXXXXX` and created with mode 0666 minus the umask,
so a finished file has the permissions of any other file the user creates. A process killed mid-write leaves
its partial file behind; `remove_stale_partials` deletes those whose writer no longer runs.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

PARTIAL_MARK = ".distilfuse-partial-"


def _create_partial(path: Path) -> Path:
    while True:
        tmp = path.with_name(f".{path.name}{PARTIAL_MARK}{os.getpid()}-{secrets.token_hex(4)}")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            continue
        return tmp


def _flush_to_disk(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call `write(tmp_path)` on a partial file beside `path`, flush it to disk, then rename it over `path`.

    A crash at any point leaves either the previous `path` or the new one, never a truncated file.
    OSErrors (no space, read-only, a parent that is a file) propagate after the partial file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_partial(path)
    try:
        write(str(tmp))
        _flush_to_disk(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _writer_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_partials(folder: str | os.PathLike) -> list[Path]:
    """Delete the partial files in `folder` left by writers that no longer run; returns what was deleted."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for partial in folder.glob(f".*{PARTIAL_MARK}*"):
        pid_text = partial.name.rsplit(PARTIAL_MARK, 1)[1].split("-", 1)[0]
        if pid_text.isdigit() and not _writer_alive(int(pid_text)):
            partial.unlink(missing_ok=True)
            removed.append(partial)
    return removed


def describe_os_error(exc: OSError, target: str | os.PathLike) -> str:
    """An OSError in a few words, naming the path it concerns when that is neither `target` nor its partial file."""
    what = exc.strerror or str(exc) or type(exc).__name__
    concerned = exc.filename
    if concerned is None or Path(concerned) == Path(target) or PARTIAL_MARK in str(concerned):
        return what
    return f"{what}: {concerned}"
