"""CDDFuse teacher: spec 4.2 layout and counts, official checkpoint loading, fusion-path semantics."""

from __future__ import annotations

import pytest
import torch

from distilfuse.models import FeatureTaps, WeightsError, count_parameters, create
from distilfuse.models.teachers.cddfuse import OFFICIAL_PARTS, CDDFuse


@pytest.fixture(scope="module")
def model() -> CDDFuse:
    torch.manual_seed(0)
    return create("cddfuse", weights=None)


def test_parts_have_the_spec_parameter_counts(model: CDDFuse) -> None:
    counts = {part: count_parameters(getattr(model, part)) for part in OFFICIAL_PARTS}
    assert counts == {
        "DIDF_Encoder": 599_144,
        "DIDF_Decoder": 207_936,
        "BaseFuseLayer": 363_016,
        "DetailFuseLayer": 18_176,
    }
    assert count_parameters(model) == 1_188_272
    assert not any(
        isinstance(m, torch.nn.Conv2d) and m.bias is not None and "shffleconv" not in n
        for n, m in model.named_modules()
    ), "only the DetailNode shuffle convs have biases"


def test_official_dataparallel_checkpoint_loads_strictly(model: CDDFuse, tmp_path) -> None:
    state = model.state_dict()
    official = {
        part: {f"module.{k[len(part) + 1 :]}": v for k, v in state.items() if k.startswith(part + ".")}
        for part in OFFICIAL_PARTS
    }
    assert sum(len(d) for d in official.values()) == len(state)
    path = tmp_path / "CDDFuse_IVF.pth"
    torch.save(official, path)
    loaded = create("cddfuse", weights=path)
    ir, vis = torch.rand(1, 1, 6, 7), torch.rand(1, 1, 6, 7)
    with torch.no_grad():
        assert torch.equal(loaded(ir, vis), model(ir, vis))
    flat_with_prefix = {f"{part}.{k}": v for part, d in official.items() for k, v in d.items()}
    assert CDDFuse.convert_state_dict(flat_with_prefix).keys() == state.keys()
    torch.save({p: official[p] for p in OFFICIAL_PARTS[:3]}, tmp_path / "partial.pth")
    with pytest.raises(WeightsError, match="partial.pth: does not fit model cddfuse"):
        create("cddfuse", weights=tmp_path / "partial.pth")


def test_decoder_adds_the_visible_image_before_the_sigmoid(model: CDDFuse) -> None:
    ir, vis = torch.rand(1, 1, 10, 9), torch.rand(1, 1, 10, 9)
    head = model.DIDF_Decoder.output[2]
    saved = head.weight.detach().clone()
    try:
        with torch.no_grad():
            head.weight.zero_()  # the head then outputs 0, so the fused image is sigmoid(vis)
            assert torch.allclose(model(ir, vis, raw=True), torch.sigmoid(vis), atol=1e-6)
    finally:
        with torch.no_grad():
            head.weight.copy_(saved)


def test_feature_taps_follow_the_fusion_path(model: CDDFuse) -> None:
    ir, vis = torch.rand(1, 1, 7, 9), torch.rand(1, 1, 7, 9)
    with torch.no_grad(), FeatureTaps(model) as taps:
        out = model(ir, vis, raw=True)
        f = taps.features
        assert torch.allclose(f["base"], model.BaseFuseLayer(f["base_ir"] + f["base_vis"]), atol=1e-5)
        assert torch.allclose(f["detail"], model.DetailFuseLayer(f["detail_ir"] + f["detail_vis"]), atol=1e-5)
    assert not torch.equal(f["base_ir"], f["base_vis"])
    assert all(f[n].shape == (1, 64, 7, 9) for n in ("base", "detail", "reduced", "decoded"))
    assert torch.equal(f["out"], out)


def test_reconstruct_is_the_stage_one_path(model: CDDFuse) -> None:
    image = torch.rand(1, 1, 8, 10)
    with torch.no_grad():
        reconstructed, base, detail = model.reconstruct(image)
        expected, _ = model.DIDF_Decoder(image, *model.DIDF_Encoder(image)[:2])
    assert torch.equal(reconstructed, expected)
    assert base.shape == detail.shape == (1, 64, 8, 10)
