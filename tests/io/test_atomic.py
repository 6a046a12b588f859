"""Atomic writing: permissions follow the umask, partial files of killed writers are recognised and removed."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from distilfuse.io import ImageWriteError, atomic_write, read_image, remove_stale_partials, write_image
from distilfuse.io.atomic import PARTIAL_MARK

KILLED_WRITER = """
import os, sys
from distilfuse.io import atomic_write

def die_half_way(tmp):
    open(tmp, "w").write("half")
    os._exit(9)  # as kill -9 would: no clean-up

atomic_write(sys.argv[1], die_half_way)
"""


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_written_files_follow_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        atomic_write(tmp_path / "a.txt", lambda tmp: Path(tmp).write_text("x"))
        write_image(tmp_path / "b.png", np.zeros((3, 3), np.uint8))
    finally:
        os.umask(old)
    for name in ("a.txt", "b.png"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


def test_a_killed_writer_leaves_a_recognisable_partial_that_the_next_run_removes(tmp_path: Path) -> None:
    (tmp_path / "out.txt").write_text("previous result")
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(tmp_path / "out.txt")], check=False)
    assert killed.returncode == 9
    (partial,) = [p for p in tmp_path.iterdir() if p.name != "out.txt"]
    assert partial.name.startswith(".out.txt" + PARTIAL_MARK)
    assert (tmp_path / "out.txt").read_text() == "previous result"  # never truncated
    live = tmp_path / f".other.txt{PARTIAL_MARK}{os.getpid()}-0123abcd"  # a writer that still runs
    live.write_text("in progress")
    assert remove_stale_partials(tmp_path) == [partial]
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, "out.txt"]


def test_failures_remove_the_partial_and_keep_the_previous_file(tmp_path: Path) -> None:
    (tmp_path / "out.txt").write_text("previous result")

    def no_space(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device", tmp)

    with pytest.raises(OSError, match="No space"):
        atomic_write(tmp_path / "out.txt", no_space)
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    assert (tmp_path / "out.txt").read_text() == "previous result"


def test_image_write_errors_name_the_file_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("a file")
    with pytest.raises(ImageWriteError) as info:
        write_image(tmp_path / "plain" / "x.png", np.zeros((3, 3), np.uint8))
    assert str(info.value).startswith(f"{tmp_path / 'plain' / 'x.png'}: cannot write (")
    assert "\n" not in str(info.value)


def test_pixel_limit_is_checked_before_decoding(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png", np.zeros((30, 40), np.uint8))
    with pytest.raises(ValueError, match="1,200 pixels, over the limit of 1,000"):
        read_image(tmp_path / "a.png", max_pixels=1000)
    assert read_image(tmp_path / "a.png", max_pixels=None).shape == (30, 40)
