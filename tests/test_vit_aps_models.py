"""Registered anchored transformers (issue 29): vit_tiny/vit_small/deit_tiny/eva02_tiny/swin_tiny ``*_aps``: timm's
API and weights, features, the meta device, export (ONNX with both exporters, torch.export), the Hub round trip."""

from __future__ import annotations

import warnings

import pytest
import timm
import torch
from patchify_models import redraw_constants, structured_images

import timm_aa  # noqa: F401  (registers the models)
from timm_aa.convert.patchify import AnchoredEmbed
from timm_aa.hub import model_args_of, render_card, verify_folder, write_export
from timm_aa.hub.card_info import CardInfo
from timm_aa.layers import PatchAnchor2d

APS = {"vit_tiny_patch16_224_aps": "vit_tiny_patch16_224", "vit_small_patch16_224_aps": "vit_small_patch16_224",
       "deit_tiny_patch16_224_aps": "deit_tiny_patch16_224", "eva02_tiny_patch14_224_aps": "eva02_tiny_patch14_224",
       "swin_tiny_patch4_window7_224_aps": "swin_tiny_patch4_window7_224"}
#: a few blocks of each, at 64 px (swin: 4x4 windows), for the fast tests
SMALL = {"vit_tiny_patch16_224_aps": dict(img_size=64, depth=3),
         "vit_small_patch16_224_aps": dict(img_size=64, depth=3),
         "deit_tiny_patch16_224_aps": dict(img_size=64, depth=3),
         "eva02_tiny_patch14_224_aps": dict(img_size=56, depth=3),
         "swin_tiny_patch4_window7_224_aps": dict(img_size=64, window_size=4, depths=(1, 1, 1, 1))}


def _size(kwargs: dict) -> int:
    return kwargs["img_size"]


def test_listed_with_the_papers_and_timms_weights():
    assert set(APS) <= set(timm.list_models("*_aps"))
    assert sorted(timm.list_models(module="vit_aps")) == sorted(APS)
    for name, base in APS.items():
        cfg, ref = timm.models.get_pretrained_cfg(name), timm.models.get_pretrained_cfg(base)
        assert "arXiv:2306.07470" in cfg.paper_ids and cfg.hf_hub_id == ref.hf_hub_id
        assert (cfg.input_size, cfg.mean, cfg.crop_pct) == (ref.input_size, ref.mean, ref.crop_pct)
        assert f"def {name}(pretrained: bool = False" in open(timm_aa.models.vit_aps.__file__).read()


@pytest.mark.parametrize("name", APS)
def test_same_parameters_as_the_timm_base_and_anchored(name):
    with torch.device("meta"):
        ours = timm.create_model(name, num_classes=7, in_chans=1)
        ref = timm.create_model(APS[name], num_classes=7, in_chans=1)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
    assert ours.pretrained_cfg["architecture"] == name
    assert isinstance(ours.patch_embed, AnchoredEmbed) and isinstance(ours.patch_embed.anchor, PatchAnchor2d)
    assert model_args_of(ours) == dict(filt_size=1, pad_mode="circular", aa_layer="aps", stem=True)


@pytest.mark.parametrize("name", APS)
def test_timm_api_and_exact_invariance(name):
    """num_classes, in_chans, img_size, forward_features / forward_head, reset_classifier, and exact invariance to
    circular shifts (random weights made to depend on the input)."""
    kwargs = SMALL[name]
    model = redraw_constants(timm.create_model(name, num_classes=5, in_chans=1, **kwargs))
    x = structured_images(2, _size(kwargs), channels=1)
    with torch.no_grad():
        out = model(x)
        assert out.shape == (2, 5)
        torch.testing.assert_close(model.forward_head(model.forward_features(x)), out)
        for shift in [(3, 7), (_size(kwargs) // 2 + 5, -11), (-9, 21)]:
            assert torch.equal(model(torch.roll(x, shift, (2, 3))), out)
    model.reset_classifier(3)
    assert model(x).shape == (2, 3)


@pytest.mark.parametrize("name", APS)
def test_features_only_and_intermediates(name):
    kwargs = SMALL[name]
    x = structured_images(1, _size(kwargs), seed=3)
    shifted = torch.roll(x, (5, 3), (2, 3))
    features = timm.create_model(name, features_only=True, **kwargs).eval()
    with torch.no_grad():
        maps = features(x)
        channel = -1 if str(getattr(features, "output_fmt", "NCHW")).endswith("NHWC") else 1  # Swin: NHWC
        assert [m.shape[channel] for m in maps] == features.feature_info.channels()
        assert all(torch.equal(a, b) for a, b in zip(maps, features(shifted), strict=True))
        model = timm.create_model(name, **kwargs).eval()
        final, inter = model.forward_intermediates(x)
        assert all(torch.equal(a, b) for a, b in zip(inter, model.forward_intermediates(shifted)[1], strict=True))


def test_dynamic_img_size_takes_any_size_exactly():
    model = redraw_constants(timm.create_model("vit_tiny_patch16_224_aps", depth=2, dynamic_img_size=True))
    for h, w in [(64, 96), (48, 48)]:
        x = structured_images(2, max(h, w))[..., :h, :w]
        with torch.no_grad():
            assert torch.equal(model(torch.roll(x, (7, -5), (2, 3))), model(x))


def test_pretrained_loads_the_bases_weights_strictly(tmp_path):
    """pretrained=True loads timm's base weights (here a local file in place of the Hub's), num_classes and in_chans
    as timm does them."""
    torch.manual_seed(0)
    base = timm.create_model("deit_tiny_patch16_224", **SMALL["deit_tiny_patch16_224_aps"])
    path = str(tmp_path / "deit.pth")
    torch.save(base.state_dict(), path)
    model = timm.create_model("deit_tiny_patch16_224_aps", pretrained=True, pretrained_cfg_overlay=dict(file=path),
                              **SMALL["deit_tiny_patch16_224_aps"])
    assert all(torch.equal(model.state_dict()[k], v) for k, v in base.state_dict().items())
    small = timm.create_model("deit_tiny_patch16_224_aps", pretrained=True, pretrained_cfg_overlay=dict(file=path),
                              num_classes=4, in_chans=1, **SMALL["deit_tiny_patch16_224_aps"])
    assert small.head.out_features == 4
    torch.testing.assert_close(small.patch_embed.proj.weight, base.patch_embed.proj.weight.sum(1, keepdim=True))
    lps = timm.create_model("deit_tiny_patch16_224_aps", pretrained=True, pretrained_cfg_overlay=dict(file=path),
                            aa_layer="lps", **SMALL["deit_tiny_patch16_224_aps"])
    assert torch.equal(lps.blocks[1].mlp.fc2.weight, base.blocks[1].mlp.fc2.weight)  # loaded after the conversion
    assert type(lps.patch_embed.anchor).__name__ == "LearnedPatchAnchor2d"


@pytest.mark.slow
def test_export_round_trip_card_and_lps(tmp_path):
    """The export folder rebuilds the anchored model in timm and transformers (what scripts/publish.py checks); the
    card says how it is anchored; an LPS model's scorer travels with it."""
    for aa_layer in ("aps", "lps"):  # (an export records the anchoring, not timm's img_size or depth: full size)
        model = timm.create_model("vit_tiny_patch16_224_aps", num_classes=3, aa_layer=aa_layer).eval()
        if aa_layer == "lps":
            with torch.no_grad():
                model.patch_embed.anchor.scorer[2].weight.normal_()
        folder = write_export(model, str(tmp_path / aa_layer))
        loaded = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
        assert type(loaded.patch_embed.anchor) is type(model.patch_embed.anchor)
        assert all(torch.equal(v, model.state_dict()[k]) for k, v in loaded.state_dict().items())
        assert verify_folder(folder, model) == {"timm": 0.0, "transformers": 0.0}
    card = str(render_card(model, CardInfo("org/vit_tiny_patch16_224_aps")))
    assert "patch grid anchored to the input (`aa_layer` `lps`)" in card and "filter size" not in card


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vit_tiny_patch16_224_aps", "swin_tiny_patch4_window7_224_aps"])
def test_torch_export(name):
    """torch.export: dynamic batch, and dynamic height and width where the base takes them (ViT with
    dynamic_img_size, sides multiples of its patch; Swin has fixed windows)."""
    dynamic = name.startswith("vit")
    kwargs = dict(SMALL[name], dynamic_img_size=True) if dynamic else SMALL[name]
    model = timm.create_model(name, **kwargs).eval()
    dims = {0: torch.export.Dim("batch", min=1, max=32)}
    if dynamic:
        # timm's PatchEmbed asserts sides divisible by the patch (without dynamic_img_pad): multiples of 16
        dims.update({2: 16 * torch.export.Dim("height", min=2, max=16),
                     3: 16 * torch.export.Dim("width", min=2, max=16)})
    size = _size(SMALL[name])
    program = torch.export.export(model, (torch.randn(2, 3, size, size),), dynamic_shapes=(dims,))
    shapes = [(1, 3, 48, 80), (3, 3, 96, 64)] if dynamic else [(1, 3, size, size), (5, 3, size, size)]
    for shape in shapes:
        x = torch.randn(shape)
        with torch.no_grad():
            want = model(x)
            torch.testing.assert_close(program.module()(x), want, rtol=1e-5, atol=1e-5)
            assert torch.equal(program.module()(torch.roll(x, (3, 7), (2, 3))), program.module()(x))


@pytest.mark.slow
@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
def test_onnx_export_of_vit_tiny_aps_runs_in_onnxruntime(dynamo, tmp_path):
    """Issue 29, acceptance 4: vit_tiny_patch16_224_aps at full size in onnxruntime, and still exactly invariant
    there. The dynamo exporter takes dynamic height and width (dynamic_img_size, as timm's base does: two sizes);
    the TorchScript exporter traces timm's position-embedding resampling at the export size (the base too), so it
    takes 224x224 with a dynamic batch."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model = timm.create_model("vit_tiny_patch16_224_aps", dynamic_img_size=dynamo).eval()
    path = str(tmp_path / "vit.onnx")
    x = torch.randn(2, 3, 224, 224)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            dims = {0: torch.export.Dim("batch", min=1, max=64), 2: torch.export.Dim("height", min=32, max=512),
                    3: torch.export.Dim("width", min=32, max=512)}
            torch.onnx.export(model, (x,), path, dynamo=True, dynamic_shapes=(dims,), verbose=False)
        else:
            torch.onnx.export(model, (x,), path, dynamo=False, input_names=["x"], output_names=["logits"],
                              dynamic_axes={"x": {0: "batch"}})
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    run = lambda t: session.run(None, {session.get_inputs()[0].name: t.numpy()})[0]  # noqa: E731
    shapes = [(1, 3, 224, 224), (3, 3, 160, 192)] if dynamo else [(1, 3, 224, 224), (3, 3, 224, 224)]
    for shape in shapes:
        x = structured_images(shape[0], max(shape[2:]))[..., : shape[2], : shape[3]]
        with torch.no_grad():
            want = model(x).numpy()
        got = run(x)
        assert abs(got - want).max() <= 1e-4, f"{shape}: max |onnxruntime - torch| {abs(got - want).max():.2e}"
        assert (run(torch.roll(x, (3, 7), (2, 3))) == got).all()


@pytest.mark.slow
def test_train_evaluate_and_publish_take_them(digits_folder, tmp_path, capsys):
    """scripts/train.py's loop, scripts/evaluate.py and a scripts/publish.py dry run on vit_tiny_patch16_224_aps: the
    export rebuilds the anchored model, its circular consistency is 100%, the card says it is anchored."""
    from conftest import run_script

    from timm_aa.training import TrainConfig, train

    cfg = TrainConfig(model="vit_tiny_patch16_224_aps", data=str(digits_folder), output=str(tmp_path / "run"),
                      epochs=1, batch_size=12, max_train_batches=1, progress=False, log_epochs=False)
    train(cfg)
    export = tmp_path / "run" / "export"
    code, out, err = run_script("publish", ["--model", str(export), "--output", str(tmp_path / "hub"), "--dry-run"],
                                capsys)
    assert code == 0, err
    assert "patch grid anchored to the input" in (tmp_path / "hub" / "README.md").read_text()
    code, out, err = run_script("evaluate", ["--model", f"local-dir:{export}", "--label", "vit_aps", "--data",
                                             str(digits_folder / "val"), "--protocol", "circular", "--passes", "2",
                                             "--no-progress"], capsys)
    assert code == 0, err
    row = next(line.split() for line in out.splitlines() if line.startswith("vit_aps"))
    assert row[2] == "100.00"  # label, top-1, circular, img/s
