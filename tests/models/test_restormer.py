"""Restormer blocks: official key layout and counts (spec 4.2), channel-attention semantics."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from distilfuse.models.base import count_parameters
from distilfuse.models.blocks.restormer import GDFN, MDTA, LiteTransformerBlock, TransformerBlock


def test_cddfuse_transformer_block_has_official_keys_and_45256_parameters() -> None:
    block = TransformerBlock(64, 8, ffn_expansion_factor=2, bias=False)
    assert count_parameters(block) == 45_256
    shapes = {k: tuple(v.shape) for k, v in block.state_dict().items()}
    assert shapes == {
        "norm1.body.weight": (64,),
        "norm1.body.bias": (64,),
        "attn.temperature": (8, 1, 1),
        "attn.qkv.weight": (192, 64, 1, 1),
        "attn.qkv_dwconv.weight": (192, 1, 3, 3),
        "attn.project_out.weight": (64, 64, 1, 1),
        "norm2.body.weight": (64,),
        "norm2.body.bias": (64,),
        "ffn.project_in.weight": (256, 64, 1, 1),
        "ffn.dwconv.weight": (256, 1, 3, 3),
        "ffn.project_out.weight": (64, 128, 1, 1),
    }


def test_lite_block_is_cddfuse_base_feature_extraction() -> None:
    block = LiteTransformerBlock(64, 8)
    assert count_parameters(block) == 363_016
    shapes = {k: tuple(v.shape) for k, v in block.state_dict().items()}
    assert shapes["attn.scale"] == (8, 1, 1)
    assert shapes["attn.qkv2.weight"] == (192, 192, 3, 3)
    assert shapes["mlp.dwconv.weight"] == (128, 2, 3, 3)  # groups 64: two channels per group
    assert not any(k.endswith(".bias") and not k.startswith("norm") for k in shapes)


def reference_mdta(attn: MDTA, x: torch.Tensor) -> torch.Tensor:
    """Plain per-head loop: softmax over channels of normalised q k^T scaled by the temperature."""
    q, k, v = attn.qkv_dwconv(attn.qkv(x)).chunk(3, dim=1)
    b, c, h, w = x.shape
    d = c // attn.num_heads
    heads = []
    for i in range(attn.num_heads):
        qi, ki, vi = (t[:, i * d : (i + 1) * d].flatten(2) for t in (q, k, v))
        qi, ki = qi / qi.norm(dim=-1, keepdim=True), ki / ki.norm(dim=-1, keepdim=True)
        a = torch.softmax(qi @ ki.transpose(1, 2) * attn.temperature[i], dim=-1)
        heads.append((a @ vi).reshape(b, d, h, w))
    return attn.project_out(torch.cat(heads, dim=1))


def test_mdta_matches_per_head_reference_and_is_channel_attention() -> None:
    torch.manual_seed(0)
    attn = MDTA(32, 4)
    with torch.no_grad():
        attn.temperature.copy_(torch.tensor([0.5, 1.0, 2.0, 3.0]).view(4, 1, 1))
        x = torch.randn(2, 32, 9, 11)
        assert torch.allclose(attn(x), reference_mdta(attn, x), atol=1e-5)


def test_gdfn_gates_gelu_of_first_half_by_second_half() -> None:
    torch.manual_seed(0)
    ffn = GDFN(16, 2.66)
    hidden = int(16 * 2.66)
    assert ffn.dwconv.groups == 2 * hidden
    x = torch.randn(1, 16, 6, 7)
    with torch.no_grad():
        y = ffn.dwconv(ffn.project_in(x))
        expected = ffn.project_out(F.gelu(y[:, :hidden]) * y[:, hidden:])
        assert torch.allclose(ffn(x), expected, atol=1e-6)


def test_transformer_block_keeps_shape_at_odd_sizes() -> None:
    block = TransformerBlock(32, 4)
    assert block(torch.randn(1, 32, 7, 13)).shape == (1, 32, 7, 13)
