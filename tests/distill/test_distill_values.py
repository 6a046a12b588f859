"""Hand-computed values on tiny tensors for every distiller, and float64 gradchecks of their transforms."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from distilfuse.distill import DistillBatch, build_distiller
from distilfuse.distill import at as at_mod
from distilfuse.distill import fg as fg_mod
from distilfuse.distill import ic as ic_mod
from distilfuse.distill import mlkd as mlkd_mod
from distilfuse.distill import mmdr as mmdr_mod
from distilfuse.distill import sca as sca_mod
from distilfuse.models.blocks.corner import corner_mask
from tests.distill.fakes import FakeStudent


def self_distiller(kind: str, **params):
    """A distiller between two FakeStudents on the pair f1/f1 (equal channels: no adapter)."""
    return build_distiller({"type": kind, "pairs": [["f1", "f1"]], **params}, FakeStudent(), FakeStudent())


def call(distiller, s, t, s_out=None, t_out=None):
    s_out = torch.zeros(s.shape[0], 1, 4, 4) if s_out is None else s_out
    t_out = s_out if t_out is None else t_out
    return distiller(DistillBatch({"f1": s}, {"f1": t}, s_out, t_out, s_out, s_out))


def impulse(*shape: int, at: tuple[int, ...]) -> torch.Tensor:
    x = torch.zeros(*shape)
    x[at] = 1.0
    return x


def test_mmdr_hand_value() -> None:
    s = impulse(1, 2, 2, 2, at=(0, 0, 0, 0))  # channel sum [[1,0],[0,0]], already unit norm
    t = impulse(1, 2, 2, 2, at=(0, 1, 0, 1))  # [[0,1],[0,0]]
    s_out = impulse(1, 1, 2, 2, at=(0, 0, 0, 0))
    t_out = impulse(1, 1, 2, 2, at=(0, 0, 1, 1))
    terms = call(self_distiller("mmdr"), s, t, s_out, t_out)
    # each pair: squared distance 2, times weight 5 / 2
    assert terms["mmdr:f1/f1"].item() == pytest.approx(5.0)
    assert terms["mmdr:out"].item() == pytest.approx(5.0)


def test_at_hand_value() -> None:
    s = impulse(1, 1, 2, 2, at=(0, 0, 0, 0))
    t = impulse(1, 1, 2, 2, at=(0, 0, 0, 1))
    # Q_s = e1, Q_t = e2: mean of (1, 1, 0, 0) squared differences over 4 = 0.5
    assert call(self_distiller("at"), s, t)["at:f1/f1"].item() == pytest.approx(0.5)


def test_ic_hand_value() -> None:
    s = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)
    t = torch.tensor([0.0, 1.0]).view(1, 2, 1, 1)
    # row-normalised Grams diag(1,0) and diag(0,1): sum of squares 2, / (C=2 * B=1)
    assert call(self_distiller("ic"), s, t)["ic:f1/f1"].item() == pytest.approx(1.0)


def test_fg_hand_value() -> None:
    distiller = self_distiller("fg", alpha=1.0, beta=0.5, gamma=1.0, lam=1.0)
    relation = distiller.relations[distiller.adapter_key("f1", "f1")]
    torch.nn.init.zeros_(relation.transform[-1].weight)  # R(x) = x
    torch.nn.init.zeros_(relation.transform[-1].bias)
    t = torch.zeros(1, 4, 1, 2)
    t[0, 0, 0, 0] = 2.0
    s = torch.zeros(1, 4, 1, 2)
    terms = call(distiller, s, t)
    e = math.e
    a_s = [2 * e / (e + 1), 2 / (e + 1)]  # teacher spatial attention, T = 0.5; focal mask = first pixel
    a_c0, a_c = 4 * e**2 / (e**2 + 3), 4 / (e**2 + 3)  # teacher channel attention
    assert terms["fg:focal:f1/f1"].item() == pytest.approx(4 * a_s[0] * a_c0 / 4, rel=1e-5)
    attention = (abs(a_s[0] - 1) + abs(a_s[1] - 1)) / 2 + (abs(a_c0 - 1) + 3 * abs(a_c - 1)) / 4
    assert terms["fg:attention:f1/f1"].item() == pytest.approx(attention, rel=1e-5)
    assert terms["fg:global:f1/f1"].item() == pytest.approx(4 / 8)


def test_sca_spatial_gram_hand_value_when_mixing_distances() -> None:
    t = torch.ones(1, 1, 2, 2)
    s = torch.tensor([[1.0, -1.0], [1.0, 1.0]]).view(1, 1, 2, 2)
    # channel-normalised pixels are the signs; the 4x4 Grams differ by 2 on the 6 entries pairing pixel 1
    terms = call(self_distiller("sca", alpha=1.0, pool=1, mix="distances"), s, t)
    assert terms["sca:f1/f1"].item() == pytest.approx(12 / 16)


def test_sca_spatial_map_hand_value() -> None:
    t = torch.zeros(1, 2, 2, 2)
    t[0, 0] = 1.0  # every pixel e1: sum_j f_j f_j^T = diag(4, 0), so F~ (F~^T F~) / 4 = F~
    s = t.clone()
    s[0, :, 0, 1] = torch.tensor([0.0, 1.0])  # pixel 1 is e2: diag(3, 1) / 4 maps e1 -> (3/4, 0), e2 -> (0, 1/4)
    # |t - s| per pixel: three (1/4, 0) and one (1, 1/4): sum 2 over 2 x 4 elements
    terms = call(self_distiller("sca", alpha=1.0, pool=1), s, t)
    assert terms["sca:f1/f1"].item() == pytest.approx(2 / 8)


def _bump(sign: float, channels: int = 1) -> torch.Tensor:
    """A flat 8x8 map of value ``sign`` with one raised pixel: a Harris corner there."""
    x = torch.full((1, channels, 8, 8), sign)
    x[..., 3, 3] += 0.5 * sign
    return x


def test_sca_corner_term_gates_normalised_features_with_the_corner_mask() -> None:
    s = torch.rand(1, 1, 12, 12) + 0.1  # positive: channel-normalised value 1
    t = torch.full((1, 1, 12, 12), 0.5)  # flat: Harris response 0, no corner
    terms = call(self_distiller("sca", alpha=0.0, pool=2, beta=0.7, corner="gated"), s, t)
    expected = corner_mask(F.max_pool2d(s, 2), 0.7, dilate=False).mean()
    assert expected > 0
    assert terms["sca:f1/f1"].item() == pytest.approx(expected.item())


@pytest.mark.parametrize(("corner", "scale"), [("mask", 1.0), ("gated", 1 / math.sqrt(2))])
def test_sca_corner_term_matches_binary_masks_unless_gated(corner: str, scale: float) -> None:
    t = _bump(1.0, channels=2)  # two equal channels: channel-normalised value 1/sqrt(2)
    s = torch.full((1, 2, 8, 8), 0.3)  # flat: no corner
    frac = corner_mask(t, 0.7, dilate=False).mean().item()
    assert 0 < frac < 1
    terms = call(self_distiller("sca", alpha=0.0, pool=1, corner=corner), s, t)
    assert terms["sca:f1/f1"].item() == pytest.approx(frac * scale)


def test_sca_binary_corner_mask_passes_a_gradient_to_the_student() -> None:
    s = _bump(1.0).requires_grad_(True)
    terms = call(self_distiller("sca", alpha=0.0, pool=1), s, torch.full((1, 1, 8, 8), 0.5))
    (grad,) = torch.autograd.grad(terms["sca:f1/f1"], s)
    assert grad.abs().sum() > 0


@pytest.mark.parametrize("mix", ["maps", "distances"])
def test_sca_mix_of_maps_against_mix_of_distances(mix: str) -> None:
    t = torch.ones(1, 1, 8, 8)  # flat: no corner; channel-normalised sign 1
    s = _bump(-1.0)  # channel-normalised sign -1, one corner region
    frac = corner_mask(s, 0.7, dilate=False).mean().item()
    assert 0 < frac < 1
    # maps: per element 0.5 (1 - (-1)) + 0.5 (0 - m_s), so mean|1 - m_s / 2| = 1 - frac / 2;
    # distances: the sign-blind N x N Grams agree, so only 0.5 mean|m_s| = frac / 2 remains
    expected = 1 - frac / 2 if mix == "maps" else frac / 2
    terms = call(self_distiller("sca", alpha=0.5, pool=1, mix=mix), s, t)
    assert terms["sca:f1/f1"].item() == pytest.approx(expected)


@pytest.mark.parametrize("option", [{"mix": "sum"}, {"corner": "soft"}])
def test_sca_unknown_form_is_refused(option: dict) -> None:
    with pytest.raises(ValueError, match="must be one of"):
        self_distiller("sca", **option)


def test_mlkd_hand_value() -> None:
    s = torch.zeros(1, 2, 2, 2)
    s[0, :, 0, 0] = 1.0  # mean map e1; pixel vectors: p0 = (1,1)/sqrt2, others 0
    t = torch.zeros(1, 2, 2, 2)
    t[0, :, 0, 1] = 1.0  # mean map e2
    s_out, t_out = torch.full((1, 1, 4, 4), 0.2), torch.full((1, 1, 4, 4), 0.5)
    terms = call(self_distiller("mlkd", sim_size=2), s, t, s_out, t_out)
    assert terms["mlkd:att:f1/f1"].item() == pytest.approx(1.0)  # orthogonal attention
    assert terms["mlkd:sim:f1/f1"].item() == pytest.approx(2 / 16)  # S_s[0,0] = 1, S_t[1,1] = 1
    assert terms["mlkd:out"].item() == pytest.approx(0.3)  # flat images: no gradient difference


@pytest.mark.parametrize(("target", "expected"), [("clamp", 0.2), ("raw", 0.7)])
def test_mlkd_response_target_is_the_clamped_teacher_output_unless_raw(target: str, expected: float) -> None:
    s_out, t_out = torch.full((1, 1, 4, 4), 0.8), torch.full((1, 1, 4, 4), 1.5)  # raw teacher output above 1
    f = torch.rand(1, 2, 2, 2)
    terms = call(self_distiller("mlkd", sim_size=2, target=target), f, f, s_out, t_out)
    assert terms["mlkd:out"].item() == pytest.approx(expected)


def test_mlkd_unknown_response_target_is_refused() -> None:
    with pytest.raises(ValueError, match="target must be one of"):
        self_distiller("mlkd", target="stretch")


@pytest.mark.parametrize(("normalized", "scale"), [(False, 8.0), (True, 1.0)])
def test_mlkd_response_gradient_term_on_a_step_edge(normalized: bool, scale: float) -> None:
    t_out = torch.tensor([0.0, 0.0, 0.5, 0.5]).expand(1, 1, 4, 4).contiguous()  # vertical step edge
    s_out = torch.zeros(1, 1, 4, 4)
    f = torch.rand(1, 2, 2, 2)
    terms = call(self_distiller("mlkd", sim_size=2, lambda_grad=10.0, normalized=normalized), f, f, s_out, t_out)
    # kernel [-1, 0, 1] x [1, 2, 1], replicate border: d/dx on columns 0..3 = 4 (v[j+1] - v[j-1]) = (0, 2, 2, 0),
    # / 8 when normalised; d/dy = 0; |Sobel| = sqrt(gx^2 + 1e-6), so a flat pixel reads 1e-3
    edge = math.sqrt((0.25 * scale) ** 2 + 1e-6)
    grad = 0.5 * (edge - 1e-3)  # half the pixels on the edge, the student flat everywhere
    assert terms["mlkd:out"].item() == pytest.approx(0.25 + 10.0 * grad, rel=1e-5)


def test_hkd_hand_value() -> None:
    distiller = self_distiller("hkd", phi=2.0, fusion_pair=["f1", "f1"])
    s, t = torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)
    terms = call(distiller, s, t, torch.zeros(1, 1, 4, 4), torch.full((1, 1, 4, 4), 0.5))
    assert terms == pytest.approx({"hkd:label": 0.5, "hkd:f1/f1": 2.0})
    distiller.stage = "fusion"
    assert call(distiller, s, t)["hkd:fusion:f1/f1"].item() == pytest.approx(1.0)


def _x(*shape: int) -> torch.Tensor:
    return torch.rand(*shape, dtype=torch.float64, requires_grad=True)


GRADCHECKS = {
    "mmdr.digest_distance": (mmdr_mod.digest_distance, (2, 3, 4, 4)),
    "at.attention_map": (at_mod.attention_map, (2, 3, 4, 4)),
    "ic.channel_correlation": (ic_mod.channel_correlation, (2, 3, 4, 4)),
    "fg.spatial_attention": (lambda x: fg_mod.spatial_attention(x, 0.5), (2, 3, 4, 4)),
    "fg.channel_attention": (lambda x: fg_mod.channel_attention(x, 0.5), (2, 3, 4, 4)),
    "sca.spatial_attention": (lambda x: sca_mod.spatial_attention(x, 2), (2, 3, 4, 4)),
    "sca.spatial_attention_map": (lambda x: sca_mod.spatial_attention_map(x, 2), (2, 3, 4, 4)),
    "sca.corner_attention": (lambda x: sca_mod.corner_attention(x, 0.7, 2, form="gated"), (2, 3, 8, 8)),
    "mlkd.mean_attention": (mlkd_mod.mean_attention, (2, 3, 4, 4)),
    "mlkd.similarity_matrix": (lambda x: mlkd_mod.similarity_matrix(x, 3), (2, 3, 4, 4)),
}


@pytest.mark.parametrize("name", sorted(GRADCHECKS))
def test_gradcheck_unary(name: str) -> None:
    torch.manual_seed(0)
    fn, shape = GRADCHECKS[name]
    if name.startswith("mmdr"):
        other = torch.rand(*shape, dtype=torch.float64)
        assert torch.autograd.gradcheck(lambda x: fn(x, other), (_x(*shape),))
    else:
        assert torch.autograd.gradcheck(fn, (_x(*shape),))


def test_gradcheck_global_context_and_response_loss() -> None:
    torch.manual_seed(0)
    block = fg_mod.GlobalContext(4).double()
    assert torch.autograd.gradcheck(block, (_x(1, 4, 3, 3),))
    target = torch.rand(1, 1, 5, 5, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda o: mlkd_mod.response_loss(o, target, 10.0), (_x(1, 1, 5, 5),))
