"""Registered alias-free models (resnet18_afc, convnext_tiny_afc): timm's API, timm's weights, export round trips.

Their exact invariance to fractional shifts (issue 19, acceptance 1) is tested in test_alias_free.py, on these
registered models."""

from __future__ import annotations

import warnings

import pytest
import timm
import torch

import timm_aa  # noqa: F401  (registers the models)
from timm_aa.convert.alias_free import new_parameter_names
from timm_aa.hub import model_args_of, verify_folder, write_export
from timm_aa.layers import AliasFreeActivation, AliasFreeConv2d

AFC = {"resnet18_afc": "resnet18", "convnext_tiny_afc": "convnext_tiny"}
TINY_RESNET = dict(channels=(8, 16, 32, 64), stem_width=8)  # resnet18_afc's layout at 1/8 of the width


def test_listed_with_the_papers_config_and_timms_weights():
    xcit = ["xcit_nano_12_p16_224_afc", "xcit_nano_4_p8_40_afc"]  # the alias-free XCiT: tests/test_xcit_afc.py
    assert sorted(timm.list_models("*_afc")) == sorted([*AFC, *xcit])
    for name, base in AFC.items():
        cfg = timm.models.get_pretrained_cfg(name)
        assert cfg.paper_ids == "arXiv:2303.08085" and cfg.hf_hub_id == timm.models.get_pretrained_cfg(base).hf_hub_id
        assert not any(n.endswith("_afc") for n in timm.list_models(module=base.split("_")[0]))


@pytest.mark.parametrize("name", AFC)
def test_parameters_are_the_bases_plus_the_coefficients(name):
    with torch.device("meta"):
        model = timm.create_model(name, num_classes=7, in_chans=1)
        base = timm.create_model(AFC[name], num_classes=7, in_chans=1)
    ours = {k: v.shape for k, v in model.state_dict().items()}
    new = new_parameter_names(model)
    assert {k: v for k, v in ours.items() if k not in new} == {k: v.shape for k, v in base.state_dict().items()}
    assert len(new) == {"resnet18_afc": 17, "convnext_tiny_afc": 18}[name]
    assert all(ours[k][1] == 3 for k in new)
    assert model_args_of(model) == {"act_scale": {"resnet18_afc": 2.0, "convnext_tiny_afc": 1.0}[name]}
    assert timm.create_model(name, device="meta", act_scale=3.0)._model_args["act_scale"] == 3.0


def test_timm_api_and_features_only():
    model = timm.create_model("resnet18_afc", num_classes=5, in_chans=1, **TINY_RESNET).eval()
    x = torch.randn(2, 1, 40, 40)
    out = model(x)
    assert out.shape == (2, 5)
    torch.testing.assert_close(model.forward_head(model.forward_features(x)), out)
    model.reset_classifier(3)
    assert model(x).shape == (2, 3)
    unpooled = timm.create_model("resnet18_afc", num_classes=0, global_pool="", in_chans=1, **TINY_RESNET).eval()
    assert unpooled(x).shape == (2, 64, 2, 2)  # feature maps (shift-equivariant): timm's unpooled form is allowed
    assert timm.create_model("resnet18_afc", dtype=torch.float64, **TINY_RESNET).fc.weight.dtype == torch.float64
    for name, kwargs in (("resnet18_afc", TINY_RESNET), ("convnext_tiny_afc", dict(depths=(1, 1, 1, 1)))):
        features = timm.create_model(name, features_only=True, **kwargs).eval()
        with torch.no_grad():
            maps = features(torch.randn(1, 3, 64, 64))
        assert [f.shape[1] for f in maps] == features.feature_info.channels()
        assert [64 // f.shape[-1] for f in maps] == features.feature_info.reduction()
        assert any(isinstance(m, AliasFreeConv2d) for m in features.modules())


def test_pretrained_loads_the_bases_weights_and_keeps_the_fitted_coefficients(tmp_path):
    """pretrained=True loads timm's base weights (here a local file in place of the Hub's): every parameter but the
    coefficients, which keep the ReLU fit for act_scale 2; features_only, num_classes and in_chans as timm does
    them."""
    torch.manual_seed(0)
    base = timm.create_model("resnet18", **TINY_RESNET)
    path = str(tmp_path / "resnet18.pth")
    torch.save(base.state_dict(), path)
    model = timm.create_model("resnet18_afc", pretrained=True, pretrained_cfg_overlay=dict(file=path), **TINY_RESNET)
    state, new = model.state_dict(), new_parameter_names(model)
    assert [k for k, v in base.state_dict().items() if not torch.equal(state[k], v)] == []
    fitted = torch.tensor([0.3989, 0.5, 0.0997])  # fit_polynomial('relu', 2.0)
    assert all(torch.allclose(state[k], fitted.expand_as(state[k]), atol=1e-4) for k in new)
    small = timm.create_model("resnet18_afc", pretrained=True, pretrained_cfg_overlay=dict(file=path), num_classes=4,
                              in_chans=1, **TINY_RESNET)
    assert small.fc.out_features == 4 and torch.allclose(small.conv1.weight, base.conv1.weight.sum(1, keepdim=True))
    features = timm.create_model("resnet18_afc", pretrained=True, pretrained_cfg_overlay=dict(file=path),
                                 features_only=True, **TINY_RESNET)
    assert torch.equal(features.layer4[1].conv2.weight, base.layer4[1].conv2.weight)
    assert isinstance(features.act1, AliasFreeActivation)


def test_export_round_trips_through_timm_and_transformers(tmp_path):
    """Trained coefficients travel: local-dir: rebuilds the model with its act_scale, and transformers loads it too
    (what scripts/publish.py checks before publishing)."""
    torch.manual_seed(0)
    model = timm.create_model("resnet18_afc", num_classes=3, act_scale=3.0, **TINY_RESNET).eval()
    with torch.no_grad():
        model.layer1[0].act2.coefficients.normal_(0, 0.3)
    folder = write_export(model, str(tmp_path / "export"), data_config=dict(input_size=(3, 40, 40)))
    loaded = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    assert loaded._model_args["act_scale"] == 3.0
    assert torch.equal(loaded.layer1[0].act2.coefficients, model.layer1[0].act2.coefficients)
    assert verify_folder(folder, model) == {"timm": 0.0, "transformers": 0.0}


@pytest.mark.slow
def test_onnx_export_of_resnet18_afc(tmp_path):
    """The matmul path (maps up to 256 px a side) exports with standard ONNX ops; fixed height and width, any
    batch. (At full width the same export matched to 2.7e-7, 36 s on 2 busy cores: here 1/8 of the width.)"""
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    model = timm.create_model("resnet18_afc", num_classes=10, **TINY_RESNET).eval()
    path = str(tmp_path / "resnet18_afc.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(2, 3, 40, 40),), path, dynamo=False, input_names=["x"],
                          dynamic_axes={"x": {0: "batch"}})
    # the resampling matrices are initializers when the matrix cache is warm, Cos/MatMul nodes when it is cold
    assert {"MatMul", "Conv"} <= {node.op_type for node in onnx.load(path).graph.node}
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    x = torch.randn(3, 3, 40, 40)
    with torch.no_grad():
        want = model(x).numpy()
    got = session.run(None, {"x": x.numpy()})[0]
    assert abs(got - want).max() <= 1e-4 * abs(want).max()
