"""Image operators that the losses and the metrics share, written once: SSIM and GMSD statistics, min-max stretch."""
