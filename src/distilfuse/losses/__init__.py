"""Task losses: ``build_loss(spec)``, ``LOSSES``, ``CompositeLoss``; GAN losses in ``losses.adversarial``."""

from distilfuse.losses import fusion, perceptual  # noqa: F401  (registers the losses)
from distilfuse.losses.base import LOSSES, CompositeLoss, TaskLoss, build_loss, register_loss
from distilfuse.losses.functional import gmsd, sobel_magnitude, ssim
from distilfuse.losses.perceptual import build_feature_extractor, feature_distance

__all__ = [
    "LOSSES",
    "CompositeLoss",
    "TaskLoss",
    "build_feature_extractor",
    "build_loss",
    "feature_distance",
    "gmsd",
    "register_loss",
    "sobel_magnitude",
    "ssim",
]
