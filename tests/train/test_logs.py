"""Training logs: which columns are loss curves."""

from __future__ import annotations

from distilfuse.train.logs import loss_series


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
