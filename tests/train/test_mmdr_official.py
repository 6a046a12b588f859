"""configs/mmdr_official.yaml against a line-by-line transcription of MMDRFuse's released training loss
(the facts in ../shared/spec/paper_results.md), on a random VGG-19 given as `perceptual_weights`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from distilfuse.distill import DistillBatch, build_distiller
from distilfuse.distill.refresh import BatchRefreshMemory
from distilfuse.losses import CompositeLoss
from distilfuse.losses.functional import gmsd
from distilfuse.losses.perceptual import build_vgg_features
from distilfuse.models import FeatureTaps, create
from distilfuse.train.config import load_config

RECIPE = Path(__file__).resolve().parents[2] / "configs" / "mmdr_official.yaml"
SIZE = 24


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    features = build_vgg_features("vgg19", 36)
    for module in features:
        if isinstance(module, nn.Conv2d):  # small weights keep deep activations finite and non-trivial
            nn.init.normal_(module.weight, std=0.05)
            nn.init.uniform_(module.bias, -0.05, 0.05)
    path = tmp_path_factory.mktemp("vgg") / "vgg19.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return path


@pytest.fixture(scope="module")
def cfg(vgg_file):
    return load_config(RECIPE, [f"perceptual_weights={vgg_file}"])


# ----------------------------------------------------------------------- the transcription
@pytest.fixture(scope="module")
def vgg(vgg_file) -> list[nn.Module]:
    """vgg19.features[:4], [:9], [:18], [:27], [:36], as the official code slices torchvision's model."""
    features = build_vgg_features("vgg19", 36)
    state = torch.load(vgg_file)
    features.load_state_dict({k[len("features.") :]: v for k, v in state.items()})
    return [features[:n] for n in (4, 9, 18, 27, 36)]


def gradient2(x):
    kernel = torch.tensor([[1 / 8, 1 / 8, 1 / 8], [1 / 8, -1, 1 / 8], [1 / 8, 1 / 8, 1 / 8]]).view(1, 1, 3, 3)
    return F.conv2d(x, kernel, padding=1)


def official_ssim(img1, img2):
    max_val = 255 if img1.max() > 128 else 1
    min_val = -1 if img1.min() < -0.5 else 0
    big_l = max_val - min_val
    g = torch.tensor([torch.exp(torch.tensor(-((x - 5) ** 2) / (2 * 1.5**2))) for x in range(11)])
    g = g / g.sum()
    window = (g[:, None] @ g[None, :]).view(1, 1, 11, 11)
    mu1, mu2 = F.conv2d(img1, window), F.conv2d(img2, window)
    s1 = F.conv2d(img1 * img1, window) - mu1**2
    s2 = F.conv2d(img2 * img2, window) - mu2**2
    s12 = F.conv2d(img1 * img2, window) - mu1 * mu2
    c1, c2 = (0.01 * big_l) ** 2, (0.03 * big_l) ** 2
    return (((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s1 + s2 + c2))).mean()


def official_content(out, ir, vi, vgg):
    mse = nn.MSELoss()
    dup = [torch.cat([x, x, x], 1) for x in (ir, vi, out)]
    perception = sum(mse(torch.max(v(dup[0]), v(dup[1])), v(dup[2])) for v in vgg) / 5
    grad = mse(gradient2(out), gradient2(torch.max(vi, ir))) / 10
    return F.l1_loss(torch.max(vi, ir), out) + 2 * perception + grad


def official_distillation(stu, tea):
    res = 0.0
    for s, t in zip(stu, tea, strict=True):
        s, t = s.sum(dim=1), t.sum(dim=1)
        res += F.mse_loss(s / s.norm(), t / t.norm(), reduction="sum")
    return 5 * res / 2


def official_memory(out, ir, vi, label_s, label_g, vgg):
    """(L_memory, store_s, store_g) of an epoch > 0 step, as the released code computes it."""
    mse = nn.MSELoss()
    ssim_cur = official_ssim(out, ir) + official_ssim(out, vi)
    ssim_best = official_ssim(label_s, ir) + official_ssim(label_s, vi)
    fsim_cur = gmsd(out, ir).mean() + gmsd(out, vi).mean()
    fsim_best = gmsd(label_g, ir).mean() + gmsd(label_g, vi).mean()
    memory_s, gap_s = 0.0, 1.0
    if ssim_cur < ssim_best:
        gap_s = ssim_best - ssim_cur
        last, cur = torch.cat([label_s] * 3, 1), torch.cat([out] * 3, 1)
        memory_s = sum(mse(vgg[j](last), vgg[j](cur)) for j in range(3, 5)) / 2 + F.l1_loss(label_s, out)
    memory_g, gap_g = 0.0, 1.0
    if fsim_cur > fsim_best:
        gap_g = fsim_cur - fsim_best
        last, cur = torch.cat([label_g] * 3, 1), torch.cat([out] * 3, 1)
        memory_g = sum(mse(vgg[j](last), vgg[j](cur)) for j in range(3)) / 3
        memory_g = memory_g + mse(gradient2(out), gradient2(label_g))
    return 10 * gap_g * memory_g + 10 * gap_s * memory_s, ssim_cur > ssim_best, fsim_cur < fsim_best


# ------------------------------------------------------------------------------- the tests
def images(seed: int, batch: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 1, SIZE, SIZE, generator=g), torch.rand(batch, 1, SIZE, SIZE, generator=g)


def test_content_and_distillation_match_the_released_code(cfg, vgg):
    torch.manual_seed(1)
    student, teacher = create("mmdr-mini", weights=None), create("mmdr-teacher", weights=None).eval()
    ir, vis = images(0)
    with FeatureTaps(student, ["feat1"]) as s_taps:
        out = student(ir, vis, raw=True)
    with torch.no_grad(), FeatureTaps(teacher, ["feat11"]) as t_taps:
        t_out = teacher(ir, vis, raw=True)
    terms = CompositeLoss(cfg["losses"])(out, ir, vis)
    distiller = build_distiller(cfg["distillers"][0], student, teacher)
    kd = distiller(DistillBatch(s_taps.features, t_taps.features, out, t_out, ir, vis))
    ours = sum(terms.values()) + sum(kd.values())
    expected = official_content(out, ir, vis, vgg) + official_distillation(
        [s_taps.features["feat1"], out], [t_taps.features["feat11"], t_out]
    )
    assert float(terms["perceptual"].detach()) > 1e-3 * float(ours.detach())  # the VGG term is live, not the substitute
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("direction", ["worse", "better"])
def test_batch_refresh_matches_the_released_code(cfg, vgg, direction):
    ir, vis = images(2)
    memory = BatchRefreshMemory(8, (SIZE, SIZE), **cfg["strategy"]["refresh"])
    assert cfg["strategy"]["level"] == "batch" and cfg["strategy"]["fill_epochs"] == 1
    indices = torch.tensor([5, 0, 3])
    first = torch.tanh(0.6 * torch.max(ir, vis) + 0.1)  # an epoch-0 output: stored, teaches nothing
    memory.update(indices, first, ir, vis, fill=True)
    assert float(memory.loss(indices, first.clone().requires_grad_()).detach()) == 0.0
    blurred = F.avg_pool2d(first, 5, stride=1, padding=2, count_include_pad=False)  # worse SSIM and GMSD
    second = (blurred if direction == "worse" else 0.5 * (ir + vis)).requires_grad_()
    labels = first.half().float()  # the memory stores float16
    expected, store_s, store_g = official_memory(second, ir, vis, labels, labels, vgg)
    memory.update(indices, second, ir, vis)
    ours = memory.loss(indices, second)
    torch.testing.assert_close(ours, torch.as_tensor(expected, dtype=ours.dtype), rtol=1e-4, atol=1e-6)
    assert (store_s, store_g) == ((False, False) if direction == "worse" else (True, True))
    assert (float(ours.detach()) > 0) == (direction == "worse")
    stored = memory.best_ssim_images[indices].float()
    assert torch.equal(stored, (second.detach() if store_s else first)[:, 0].half().float())
    assert torch.equal(
        memory.best_gmsd_images[indices].float(), (second.detach() if store_g else first)[:, 0].half().float()
    )
