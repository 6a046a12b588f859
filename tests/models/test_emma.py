"""emma: EMMA's Ufuser built from the spec with the official module names (no weights available)."""

from __future__ import annotations

import pytest
import torch

from distilfuse.models import FeatureTaps, count_parameters, create, get_card

# A few official Ufuser keys and shapes (spec §4.3: channels 8/16/32/32; convs have no bias except in
# the ResBlocks and `last`).
OFFICIAL_KEYS = {
    "V_en_1.embed.weight": (8, 1, 3, 3),
    "V_en_1.GlobalFeature.attn.scale": (8, 1, 1),
    "V_en_1.GlobalFeature.attn.qkv2.weight": (24, 24, 3, 3),
    "V_en_1.GlobalFeature.mlp.dwconv.weight": (16, 2, 3, 3),
    "V_en_1.GlobalFeature.norm2.body.bias": (8,),
    "I_en_4.LocalFeature.Extraction.1.conv.2.bias": (32,),
    "f_2.FFN.weight": (16, 32, 3, 3),
    "I_down3.weight": (32, 32, 3, 3),
    "up4.0.weight": (32, 32, 4, 4),
    "up2.0.weight": (16, 8, 4, 4),
    "de_4.embed.weight": (32, 32, 3, 3),
    "de_1.embed.weight": (8, 16, 3, 3),
    "last.0.weight": (1, 8, 3, 3),
    "last.0.bias": (1,),
}


def test_registered_as_teacher_with_the_spec_parameter_count() -> None:
    card = get_card("emma")
    assert card.role == "teacher"
    assert card.param_count == count_parameters(create("emma", weights=None)) == 1_517_657


def test_state_dict_uses_official_names() -> None:
    state = create("emma", weights=None).state_dict()
    assert {key: tuple(state[key].shape) for key in OFFICIAL_KEYS} == OFFICIAL_KEYS
    assert not any(key.endswith("running_mean") for key in state)


def test_saved_weights_load_back_strictly(tmp_path) -> None:
    torch.manual_seed(0)
    model = create("emma", weights=None)
    path = tmp_path / "EMMA.pth"
    torch.save(model.state_dict(), path)
    loaded = create("emma", weights=path)
    ir, vis = torch.rand(1, 1, 16, 24), torch.rand(1, 1, 16, 24)
    with torch.no_grad():
        assert torch.equal(loaded(ir, vis), model.eval()(ir, vis))


def test_output_is_a_sigmoid_map_and_features_follow_the_u_net() -> None:
    model = create("emma", weights=None)
    ir, vis = torch.rand(2, 1, 32, 48), torch.rand(2, 1, 32, 48)
    with torch.no_grad(), FeatureTaps(model) as taps:
        out = model(ir, vis, raw=True)
    assert out.shape == (2, 1, 32, 48) and out.min() > 0 and out.max() < 1
    for level, (channels, stride) in enumerate(zip((8, 16, 32, 32), (1, 2, 4, 8), strict=True), start=1):
        for prefix in "ivfd":
            assert taps.features[f"{prefix}{level}"].shape == (2, channels, 32 // stride, 48 // stride)
    assert torch.equal(taps.features["out"], out)


def test_inputs_smaller_than_16_pixels_are_refused_clearly() -> None:
    model = create("emma", weights=None)
    with pytest.raises(ValueError, match="EMMA needs H and W >= 16"):
        model(torch.rand(1, 1, 8, 40), torch.rand(1, 1, 8, 40))
