"""MMDRFuse dynamic refresh (Deng et al., ACM MM 2024, eqs. 6-12): best-so-far outputs per training sample.

For every training sample the memory keeps the output with the best SSIM to the sources (O_bs, higher
is better) and the one with the best GMSD (O_bg, lower is better), with their scores. Outputs are
stored as uint8 (clamped to [0,1], rounded to 1/255) and scores as float32, on the CPU:
2 * H * W + 8 bytes per sample (32,776 bytes for 128 x 128 patches, 524 MB for MMDRFuse's 16,000).
Scores are those of the float outputs; the stored image differs from it by at most 1/510.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor

from distilfuse.losses.functional import GradientOperator, check_same_shape, image_gradient, per_sample_mean, ssim
from distilfuse.losses.functional import gmsd as gmsd_score
from distilfuse.losses.perceptual import Network, build_feature_extractor, default_layers, feature_distance

log = logging.getLogger(__name__)


class RefreshMemory:
    """Bounded memory of best-so-far outputs and the refresh loss L_refresh = gap_s L_s + gap_g L_g (eq. 12).

    Call ``update(indices, outputs, ir, vis)`` first (it scores the current outputs, eqs. 6-7, and
    replaces the stored ones they beat, eq. 8), then ``loss(indices, outputs)`` on the same batch. The gaps
    gap_s = S_bs - S_cur and gap_g = G_cur - G_bg (eq. 11) are therefore >= 0, and zero for a sample
    whose current output just became its best. L_s (eq. 9) = mean MSE of perception maps 4-5 + mean
    |O - O_bs|; L_g (eq. 10) = mean MSE of perception maps 1-3 + mean (grad O - grad O_bg)^2, grad =
    ``gradient`` (|Sobel| as ``losses.mmdr_gradient`` by default). The perception maps are VGG-19's five
    pre-pool ReLUs from ``perceptual_weights`` (``imagenet_normalize`` as ``losses.perceptual``), or the
    logged pyramid substitute without it. ``gap_scale`` multiplies the gaps (the official code: 10).
    """

    def __init__(
        self,
        num_samples: int,
        patch_shape: tuple[int, int],
        perceptual_weights: str | None = None,
        network: Network = "vgg19",
        gap_scale: float = 1.0,
        gradient: GradientOperator = "sobel_magnitude",
        imagenet_normalize: bool = True,
    ) -> None:
        if num_samples < 1 or len(patch_shape) != 2 or min(patch_shape) < 1:
            raise ValueError(f"need num_samples >= 1 and a (H, W) patch shape, got {num_samples}, {patch_shape}")
        self.num_samples = int(num_samples)
        self.patch_shape = (int(patch_shape[0]), int(patch_shape[1]))
        self.gap_scale = float(gap_scale)
        self.gradient = gradient
        self.best_ssim_images = torch.zeros(self.num_samples, *self.patch_shape, dtype=torch.uint8)
        self.best_gmsd_images = torch.zeros(self.num_samples, *self.patch_shape, dtype=torch.uint8)
        self.best_ssim = torch.full((self.num_samples,), float("-inf"))
        self.best_gmsd = torch.full((self.num_samples,), float("inf"))
        self.features = build_feature_extractor(
            network, default_layers(network), perceptual_weights, imagenet_normalize
        )
        self._current: tuple[Tensor, Tensor, Tensor] | None = None
        log.info(
            "refresh memory: %d samples x %d bytes = %.1f MB",
            self.num_samples,
            self.bytes_per_sample,
            self.nbytes / 1e6,
        )

    STATE = ("best_ssim_images", "best_gmsd_images", "best_ssim", "best_gmsd")

    def state_dict(self) -> dict[str, Tensor]:
        """The per-sample memory (what a checkpoint must keep to resume exactly)."""
        return {name: getattr(self, name).clone() for name in self.STATE}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        for name in self.STATE:
            getattr(self, name).copy_(state[name])

    @property
    def bytes_per_sample(self) -> int:
        h, w = self.patch_shape
        return 2 * h * w + 2 * 4

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.state_dict().values())

    def _check(self, indices: Tensor, outputs: Tensor) -> Tensor:
        indices = torch.as_tensor(indices).detach().long().cpu().flatten()
        if outputs.dim() != 4 or outputs.shape[1] != 1 or tuple(outputs.shape[-2:]) != self.patch_shape:
            h, w = self.patch_shape
            raise ValueError(f"outputs must be (B,1,{h},{w}), got {tuple(outputs.shape)}")
        if indices.numel() != outputs.shape[0]:
            raise ValueError(f"{indices.numel()} indices for a batch of {outputs.shape[0]}")
        if indices.numel() and (indices.min() < 0 or indices.max() >= self.num_samples):
            raise IndexError(f"sample indices must lie in [0, {self.num_samples}), got {indices.tolist()}")
        if indices.unique().numel() != indices.numel():
            raise ValueError(f"duplicate sample indices in one batch: {indices.tolist()}")
        return indices

    @torch.no_grad()
    def update(self, indices: Tensor, outputs: Tensor, ir: Tensor, vis: Tensor, fill: bool = False) -> None:
        """Score the current outputs (SSIM and GMSD to both sources) and keep those better than the stored.

        ``fill`` is for the batch-level rule's first epoch; per sample, the first visit always stores."""
        indices = self._check(indices, outputs)
        check_same_shape(outputs, ir, "outputs and ir")
        check_same_shape(outputs, vis, "outputs and vis")
        out = outputs.detach().clamp(0.0, 1.0)
        s_cur = ssim(out, ir) + ssim(out, vis)
        g_cur = gmsd_score(out, ir) + gmsd_score(out, vis)
        stored = torch.round(out[:, 0] * 255).to(torch.uint8).cpu()
        better_s = s_cur.float().cpu() > self.best_ssim[indices]
        better_g = g_cur.float().cpu() < self.best_gmsd[indices]
        self.best_ssim[indices[better_s]] = s_cur.float().cpu()[better_s]
        self.best_ssim_images[indices[better_s]] = stored[better_s]
        self.best_gmsd[indices[better_g]] = g_cur.float().cpu()[better_g]
        self.best_gmsd_images[indices[better_g]] = stored[better_g]
        self._current = (indices, s_cur, g_cur)

    def loss(self, indices: Tensor, outputs: Tensor) -> Tensor:
        """L_refresh (eq. 12), averaged over the batch; differentiable in ``outputs``."""
        indices = self._check(indices, outputs)
        if self._current is None or not torch.equal(self._current[0], indices):
            raise RuntimeError("call update() with the same batch of indices before loss()")
        _, gap_s, gap_g = self._gaps(indices, outputs)
        if not bool((gap_s > 0).any() or (gap_g > 0).any()):
            return outputs.sum() * 0.0  # every current output is its own best: nothing to learn
        o_bs, o_bg = self._stored(indices, outputs)
        features = self.features.to(outputs.device)
        f_cur, f_bs, f_bg = features(outputs), features(o_bs), features(o_bg)
        loss_s = feature_distance(f_cur[3:5], f_bs[3:5]) + per_sample_mean((outputs - o_bs).abs())
        grad_gap = F.mse_loss(
            image_gradient(outputs, self.gradient), image_gradient(o_bg, self.gradient), reduction="none"
        )
        loss_g = feature_distance(f_cur[:3], f_bg[:3]) + per_sample_mean(grad_gap)
        return self.gap_scale * (gap_s * loss_s + gap_g * loss_g).mean()

    def _gaps(self, indices: Tensor, outputs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(indices, gap_s, gap_g) of the batch scored by the last ``update``, detached."""
        _, s_cur, g_cur = self._current
        device, dtype = outputs.device, outputs.dtype
        gap_s = (self.best_ssim[indices].to(device, dtype) - s_cur.to(dtype)).detach()
        gap_g = (g_cur.to(dtype) - self.best_gmsd[indices].to(device, dtype)).detach()
        return indices, gap_s, gap_g

    def _stored(self, indices: Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
        """The stored best-SSIM and best-GMSD outputs of ``indices`` as (B,1,H,W) like ``like``."""
        device, dtype = like.device, like.dtype
        o_bs = (self.best_ssim_images[indices].to(device, dtype) / 255.0).unsqueeze(1)
        o_bg = (self.best_gmsd_images[indices].to(device, dtype) / 255.0).unsqueeze(1)
        return o_bs, o_bg


def official_ssim(x: Tensor, y: Tensor) -> Tensor:
    """Batch-mean SSIM as MMDRFuse's training code scores raw outputs: the value range L is read from
    ``x`` (1, or 2 when min(x) < -0.5; 255 when max(x) > 128 adds 254), an 11x11 window, valid borders."""
    high = 255.0 if bool(x.max() > 128) else 1.0
    low = -1.0 if bool(x.min() < -0.5) else 0.0
    return ssim(x, y, data_range=high - low).mean()


class BatchRefreshMemory(RefreshMemory):
    """The refresh rule of MMDRFuse's released code, which differs from the paper's per-sample eqs. 6-8.

    Scores are batch means (SSIM with ``official_ssim`` and GMSD on the raw outputs, summed over the
    two sources). The first ``update(..., fill=True)`` epoch only stores; afterwards, when the current
    batch beats the score of the outputs stored for these samples (re-scored, since batches are drawn
    anew each epoch), the whole batch is stored, else the gap drives the loss; an equal score teaches
    nothing. Raw outputs are stored as float16 (tanh outputs can be negative), 4 * H * W bytes per
    sample. GMSD keeps this module's zero-padded Prewitt (the official code crops one border pixel).
    """

    def __init__(self, num_samples: int, patch_shape: tuple[int, int], **kwargs) -> None:
        super().__init__(num_samples, patch_shape, **kwargs)
        self.best_ssim_images = torch.zeros(self.num_samples, *self.patch_shape, dtype=torch.float16)
        self.best_gmsd_images = torch.zeros(self.num_samples, *self.patch_shape, dtype=torch.float16)

    @property
    def bytes_per_sample(self) -> int:
        h, w = self.patch_shape
        return 4 * h * w + 2 * 4

    def _score(self, out: Tensor, ir: Tensor, vis: Tensor) -> tuple[Tensor, Tensor]:
        s = official_ssim(out, ir) + official_ssim(out, vis)
        g = gmsd_score(out, ir).mean() + gmsd_score(out, vis).mean()
        return s, g

    @torch.no_grad()
    def update(self, indices: Tensor, outputs: Tensor, ir: Tensor, vis: Tensor, fill: bool = False) -> None:
        indices = self._check(indices, outputs)
        check_same_shape(outputs, ir, "outputs and ir")
        check_same_shape(outputs, vis, "outputs and vis")
        out = outputs.detach()
        s_cur, g_cur = self._score(out, ir, vis)
        stored = out[:, 0].to(torch.float16).cpu()
        if fill:
            s_best, g_best = s_cur, g_cur
        else:
            o_bs, o_bg = self._stored(indices, out)
            s_best = self._score(o_bs, ir, vis)[0]
            g_best = self._score(o_bg, ir, vis)[1]
        if fill or s_cur > s_best:
            self.best_ssim_images[indices] = stored
        if fill or g_cur < g_best:
            self.best_gmsd_images[indices] = stored
        gap_s = (s_best - s_cur).clamp_min(0.0).float().cpu()
        gap_g = (g_cur - g_best).clamp_min(0.0).float().cpu()
        self.best_ssim[indices] = torch.maximum(s_cur, s_best).float().cpu()
        self.best_gmsd[indices] = torch.minimum(g_cur, g_best).float().cpu()
        self._current = (indices, gap_s, gap_g)

    def _gaps(self, indices: Tensor, outputs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        _, gap_s, gap_g = self._current
        return indices, gap_s.to(outputs.device, outputs.dtype), gap_g.to(outputs.device, outputs.dtype)

    def _stored(self, indices: Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
        device, dtype = like.device, like.dtype
        o_bs = self.best_ssim_images[indices].to(device, dtype).unsqueeze(1)
        o_bg = self.best_gmsd_images[indices].to(device, dtype).unsqueeze(1)
        return o_bs, o_bg
