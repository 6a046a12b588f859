"""CPU threads: a default that follows the machine's load, --threads on every command, passive OpenMP waiting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from distilfuse import threads
from distilfuse.allocator import OPT_OUT
from distilfuse.cli.main import COMMANDS, main


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(("busy", "expected"), [(0.1, 4), (1.4, 3), (2.6, 1), (3.6, 1), (9.0, 1)])
def test_default_uses_the_cores_other_processes_leave_idle(monkeypatch, busy: float, expected: int) -> None:
    monkeypatch.delenv(threads.THREADS_ENV, raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    monkeypatch.setattr(threads, "busy_cores", lambda: busy)
    assert threads.default_threads() == expected


def test_busy_cores_sees_a_load_that_has_just_started(monkeypatch, tmp_path: Path) -> None:
    fake = tmp_path / "loadavg"
    fake.write_text("0.30 0.20 0.10 4/180 12345\n")  # three runnable besides us; the average has not caught up
    monkeypatch.setattr(threads, "LOADAVG", fake)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.3, 0.2, 0.1))
    assert threads.busy_cores() == 3
    monkeypatch.setattr(os, "getloadavg", lambda: (5.5, 3.0, 1.0))
    assert threads.busy_cores() == 5.5


def test_environment_variable_fixes_the_count(monkeypatch) -> None:
    monkeypatch.setattr(threads, "busy_cores", lambda: 0.0)
    monkeypatch.setenv(threads.THREADS_ENV, "3")
    assert threads.default_threads() == 3
    monkeypatch.setenv(threads.THREADS_ENV, "many")
    with pytest.raises(threads.ThreadsError, match="DISTILFUSE_THREADS='many'"):
        threads.default_threads()


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_takes_threads(command: str, capsys) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "--threads N" in capsys.readouterr().out


def test_threads_option_and_default_are_applied(monkeypatch, capsys, restore_threads) -> None:
    assert main(["models", "--threads", "3"]) == 0
    assert torch.get_num_threads() == 3
    monkeypatch.setenv(threads.THREADS_ENV, "2")
    assert main(["models"]) == 0
    assert torch.get_num_threads() == 2
    monkeypatch.setenv(threads.THREADS_ENV, "0")
    assert main(["models"]) == 2
    assert "error: DISTILFUSE_THREADS='0'" in capsys.readouterr().err


@pytest.mark.parametrize(("preset", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_command_line_makes_openmp_wait_passively_before_torch_loads(preset: str | None, expected: str) -> None:
    probe = (
        "import os, sys\n"
        "import distilfuse.cli.main as cli\n"
        "cli.main = lambda: print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules) or 0\n"
        "cli.console()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env[OPT_OUT] = "system"  # no re-execution: the probe itself must see the setting
    if preset:
        env["OMP_WAIT_POLICY"] = preset
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.split() == [expected, "False"]
