"""Running the command under mimalloc: glibc's allocator page-faults on every large conv/attention
temporary, which costs 2-6x on CPU. The wheel `cmeel-mimalloc` ships the library; the command line
re-executes itself with it preloaded (set DISTILFUSE_ALLOCATOR=system to keep glibc's allocator).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

OPT_OUT = "DISTILFUSE_ALLOCATOR"


def find_mimalloc() -> Path | None:
    """The mimalloc shared library installed by `cmeel-mimalloc`, if any."""
    for entry in sys.path:
        lib = Path(entry or ".") / "cmeel.prefix" / "lib" / "libmimalloc.so"
        if lib.is_file():
            return lib
    return None


def allocator_in_use() -> str:
    """'mimalloc' when the library is mapped into this process, otherwise 'system'."""
    maps = Path("/proc/self/maps")
    if maps.is_file() and "libmimalloc" in maps.read_text():
        return "mimalloc"
    return "system"


def reexec_with_mimalloc(argv: list[str]) -> None:
    """Replace this process by `python -m distilfuse argv` with mimalloc preloaded, when that is
    possible and wanted; otherwise return and let the caller go on."""
    if not sys.platform.startswith("linux") or os.environ.get(OPT_OUT) or allocator_in_use() == "mimalloc":
        return
    lib = find_mimalloc()
    if lib is None:
        return
    env = dict(os.environ)
    env[OPT_OUT] = "mimalloc"  # marks the child, so it never re-executes again
    env["LD_PRELOAD"] = os.pathsep.join(filter(None, [str(lib), env.get("LD_PRELOAD")]))
    os.execve(sys.executable, [sys.executable, "-m", "distilfuse", *argv], env)
