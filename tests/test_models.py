"""Registered *_aa models: listing, timm API (num_classes, in_chans, features_only, heads, grad checkpointing)."""

from __future__ import annotations

import pytest
import timm
import torch

import timm_aa
from timm_aa.hub import model_args_of
from timm_aa.layers import BlurPool2d, MaxBlurPool2d
from timm_aa.weights import zhang_releases

ZHANG = [r.model.removesuffix("_aa") for r in zhang_releases() if r.family != "alexnet"]
MODERN = ["resnet50d", "convnext_tiny", "efficientnet_b0", "mobilenetv3_large_100", "regnety_016"]
ALL = [f"{n}_aa" for n in ZHANG + MODERN] + ["alexnet_aa"]
SMALL = ["resnet18_aa", "densenet121_aa", "mobilenetv2_100_aa", "alexnet_aa", "vgg11_aa", *[f"{n}_aa" for n in MODERN]]


def test_every_model_is_listed_and_none_shadows_timm():
    listed = set(timm.list_models("*_aa"))
    assert set(ALL) <= listed
    timm_modules = {"resnet", "densenet", "vgg", "efficientnet", "convnext", "mobilenetv3", "regnet"}
    for module in timm_modules:
        assert not any(name.endswith("_aa") for name in timm.list_models(module=module)), module
    for name in ALL:
        assert timm.models.get_pretrained_cfg(name).paper_ids


@pytest.mark.parametrize("base", ZHANG + MODERN)
def test_same_parameters_as_the_timm_base(base):
    with torch.device("meta"):
        ours = timm.create_model(f"{base}_aa", num_classes=7, in_chans=1)
        ref = timm.create_model(base, num_classes=7, in_chans=1)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
    assert ours.pretrained_cfg["architecture"] == f"{base}_aa"
    assert any(isinstance(m, (BlurPool2d, MaxBlurPool2d)) for m in ours.modules())


def _slow_but(names, fast):
    """``names`` as parameters, all but ``fast`` in the slow set."""
    return [n if n in fast else pytest.param(n, marks=pytest.mark.slow) for n in names]


@pytest.mark.parametrize("name", _slow_but(SMALL, ("resnet18_aa", "mobilenetv2_100_aa", "alexnet_aa")))
def test_timm_api(name):
    model = timm.create_model(name, num_classes=5, in_chans=1).eval()
    x = torch.randn(2, 1, 96, 96)
    out = model(x)
    assert out.shape == (2, 5)
    feats = model.forward_features(x)
    torch.testing.assert_close(model.forward_head(feats), out)
    assert model.forward_head(feats, pre_logits=True).shape[0] == 2
    model.reset_classifier(3)
    assert model(x).shape == (2, 3)
    assert model.get_classifier() is not None


@pytest.mark.parametrize("name", SMALL)
def test_features_only(name):
    model = timm.create_model(name, features_only=True).eval()
    feats = model(torch.randn(1, 3, 128, 128))
    assert [f.shape[1] for f in feats] == model.feature_info.channels()
    for f, reduction in zip(feats, model.feature_info.reduction(), strict=True):
        nominal = 128 // reduction
        assert 0.75 * nominal <= f.shape[-1] <= nominal  # AlexNet's unpadded kernels trim a few pixels
    assert any(isinstance(m, (BlurPool2d, MaxBlurPool2d)) for m in model.modules())


@pytest.mark.parametrize("name", _slow_but(["resnet18_aa", "densenet121_aa", "convnext_tiny_aa", "efficientnet_b0_aa"],
                                           ("resnet18_aa",)))
def test_grad_checkpointing_gives_the_same_gradients(name):
    model = timm.create_model(name, num_classes=4, drop_rate=0.0)
    x = torch.randn(2, 3, 64, 64)
    model.train()
    model(x).sum().backward()
    ref = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.set_grad_checkpointing(True)
    model(x).sum().backward()
    for a, b in zip(ref, [p.grad for p in model.parameters()], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_baseline_weights_load_strictly():
    base = timm.create_model("resnet18", num_classes=10)
    model = timm.create_model("resnet18_aa", num_classes=10)
    model.load_state_dict(base.state_dict(), strict=True)


@pytest.mark.parametrize("filt_size", range(1, 8))
def test_filter_size_and_pad_mode_kwargs(filt_size):
    model = timm.create_model("resnet18_aa", filt_size=filt_size, pad_mode="replicate", num_classes=2)
    blurs = [m for m in model.modules() if isinstance(m, (BlurPool2d, MaxBlurPool2d))]
    assert blurs and all(m.filt_size == filt_size and m.pad_mode == "replicate" for m in blurs)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 2)


def test_zhang_stem_on_resnets_only():
    assert timm.create_model("resnet18_aa").maxpool.kernel_size == [2, 2]
    assert timm.create_model("resnet50d_aa").maxpool.kernel_size == [3, 3]


def test_alexnet_features_are_zhang_layout():
    model = timm.create_model("alexnet_aa")
    assert model.features[0].stride == (2, 2) and isinstance(model.features[2], BlurPool2d)
    assert model(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


def test_model_args_record_the_resolved_anti_aliasing():
    model = timm.create_model("resnet18_aa.zhang_lpf3_in1k", num_classes=3)
    assert model._model_args == dict(filt_size=3, pad_mode="reflect", aa_layer="blur", stem=False, stem_max_pool=2,
                                     num_classes=3)
    assert model_args_of(model) == dict(filt_size=3, pad_mode="reflect", aa_layer="blur", stem=False, stem_max_pool=2)
    assert not hasattr(model, "aa_args")
    assert model_args_of(timm.create_model("resnet18_aps")) == dict(filt_size=1, pad_mode="circular", aa_layer="aps",
                                                                    stem=True)
    assert model_args_of(timm.create_model("alexnet_aa", pad_mode="zeros")) == dict(filt_size=4, pad_mode="zeros")
    assert model_args_of(timm.create_model("resnet18")) == {}
    rebuilt = timm.create_model("resnet18_aa", **model_args_of(model))  # the record rebuilds the same layout
    assert [type(m) for m in rebuilt.modules()] == [type(m) for m in model.modules()]


def test_entrypoints_leave_the_callers_kwargs_alone():
    for name in ("resnet18_aps", "resnet18_aa", "alexnet_aa", "vgg11_aa"):
        kwargs = dict(num_classes=3)
        timm.models.model_entrypoint(name)(**kwargs)
        assert kwargs == dict(num_classes=3), name


def test_every_release_is_registered_with_a_docstring():
    for release in zhang_releases():
        fn = timm.models.model_entrypoint(release.model)
        module = __import__(fn.__module__, fromlist=["x"])
        assert getattr(module, release.model) is fn and release.title in fn.__doc__
        assert release.model in timm.list_models(module=fn.__module__.rsplit(".", 1)[-1])
    with pytest.raises(TypeError, match="aa_layer"):
        timm.create_model("alexnet_aa", aa_layer="aps")


def test_every_registered_model_has_a_def_a_reader_can_grep():
    """Issue 21: the 23 Zhang models were closures set into sys.modules; `grep "def resnet50_aa"` found nothing."""
    import pathlib

    source = "\n".join(p.read_text() for p in pathlib.Path(timm_aa.__file__).parent.rglob("*.py"))
    names = timm.list_models("*_aa") + timm.list_models("*_aps") + timm.list_models("*_lps")
    assert len(names) >= 32 and [n for n in names if f"def {n}(pretrained: bool = False" not in source] == []


def test_the_model_kwarg_is_aa_layer_as_in_antialias():
    for model in (timm.create_model("resnet18_aa", aa_layer="aps", pad_mode="circular", stem=True, filt_size=1),
                  timm_aa.antialias(timm.create_model("resnet18"), aa_layer="aps", pad_mode="circular", stem=True,
                                    filt_size=1, stem_max_pool=2)):
        assert any(type(m).__name__ == "APSPool2d" for m in model.modules())
    assert model_args_of(timm.create_model("resnet18_aa", aa_layer="lps"))["aa_layer"] == "lps"
