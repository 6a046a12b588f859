"""Training logs: which columns are loss curves, the run log's sums, rows, state and files, the epoch line."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from distilfuse.train.logs import RunLog, epoch_line, loss_series


def test_loss_series_leave_out_bookkeeping_and_validation_columns() -> None:
    epochs = [
        {"epoch": 1, "phase": "main", "steps": 10, "seconds": 2.0, "peak_memory_mb": 9.0, "lr": 1e-3, "loss": 0.5},
        {
            "epoch": 2,
            "phase": "main",
            "steps": 10,
            "seconds": 2.0,
            "lr": 1e-3,
            "loss": 0.3,
            "l_int": 0.1,
            "val_SSIM": 1.2,
        },
    ]
    assert loss_series(epochs, "epoch") == {"loss": [(1, 0.5), (2, 0.3)], "l_int": [(2, 0.1)]}
    steps = [{"step": 5, "epoch": 1, "lr": 1e-3, "loss": 0.9}, {"step": 10, "epoch": 1, "lr": 1e-3, "loss": 0.7}]
    assert loss_series(steps, "step") == {"loss": [(5, 0.9), (10, 0.7)]}


def test_run_log_sums_rows_state_and_files(tmp_path: Path) -> None:
    log = RunLog()
    log.add_step({"loss": 1.0, "a": 0.5})
    log.add_step({"loss": 3.0, "a": 1.5}, row={"step": 2, "epoch": 1, "lr": 0.1})
    assert log.step_log == [{"step": 2, "epoch": 1, "lr": 0.1, "loss": 3.0, "a": 1.5}]
    assert log.epoch_means(2) == {"loss": 2.0, "a": 1.0}
    log.add_epoch({"epoch": 1, "phase": "main", **log.epoch_means(2)})
    resumed = RunLog()
    resumed.load_state_dict(copy.deepcopy(log.state_dict()))  # as through a checkpoint
    resumed.add_step({"loss": 2.0, "a": 1.0}, row={"step": 3, "epoch": 2})  # the epoch's sums go on
    assert resumed.epoch_means(3) == {"loss": 2.0, "a": 1.0}
    resumed.write(tmp_path, {"seed": 1}, {"epoch": 1}, 3)
    assert json.loads((tmp_path / "log.json").read_text()) == {
        "config": {"seed": 1},
        "epochs": [{"epoch": 1, "phase": "main", "loss": 2.0, "a": 1.0}],
        "best": {"epoch": 1},
        "global_step": 3,
    }
    assert (tmp_path / "steps.csv").read_text().splitlines() == [
        "step,epoch,lr,loss,a",
        "2,1,0.1,3.0,1.5",
        "3,2,,2.0,1.0",
    ]
    assert (tmp_path / "log.csv").is_file() and (tmp_path / "curves.png").stat().st_size > 0
    resumed.start_epoch()
    assert resumed.epoch_means(1) == {}


def test_epoch_line() -> None:
    row = {"epoch": 2, "phase": "sr", "loss": 0.25, "seconds": 1.5, "peak_memory_mb": 300.4, "val_SSIM": 0.5}
    line = "epoch 2/3 [sr]  loss 0.25  1.5 s  peak memory 300 MB  | val_SSIM 0.5"
    assert epoch_line(row, 3, improved=True) == line + "  (best)"
    assert epoch_line({k: v for k, v in row.items() if k != "val_SSIM"}, 3, improved=True) == line.split("  |")[0]
