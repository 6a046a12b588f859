"""The command line runs under mimalloc when it is installed, and can opt out."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from distilfuse.allocator import OPT_OUT, find_mimalloc


def version_line(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in (OPT_OUT, "LD_PRELOAD")}
    done = subprocess.run(
        [sys.executable, "-m", "distilfuse", "--version"], capture_output=True, text=True, env={**clean, **env}
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="LD_PRELOAD is Linux-only")
def test_command_line_re_executes_under_mimalloc_when_installed() -> None:
    expected = "mimalloc" if find_mimalloc() is not None else "system"
    assert version_line().endswith(f"(allocator: {expected})")


def test_opting_out_keeps_the_system_allocator() -> None:
    assert version_line(**{OPT_OUT: "system"}).endswith("(allocator: system)")
