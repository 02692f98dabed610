"""Registered models export and trace like timm models: ONNX (both exporters, run in onnxruntime), torch.export
with dynamic shapes, the meta device and ``dtype=``, fx feature extraction (timm's and torchvision's), TorchScript."""

from __future__ import annotations

import warnings

import pytest
import timm
import torch

import timm_aa  # noqa: F401  (registers the models)
from timm_aa.layers import BlurPool2d, MaxBlurPool2d

EXPORTED = ["resnet18_aa", "resnet50_aa", "mobilenetv2_100_aa", "convnext_tiny_aa"]
SHAPES = [(1, 3, 224, 224), (3, 3, 160, 192), (2, 3, 64, 64)]  # 64x64: the last maps are 2x2, reflect-padded by 2


def registered() -> list[str]:
    return sorted({name for pattern in ("*_aa", "*_aps", "*_lps", "*_afc") for name in timm.list_models(pattern)})


def _onnx_matches(model: torch.nn.Module, path: str, dynamo: bool, dynamic_size: bool = True) -> None:
    ort = pytest.importorskip("onnxruntime")
    x = torch.randn(2, 3, 224, 224)  # torch.export specialises a batch of 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            dims = {0: torch.export.Dim("batch", min=1, max=64)}
            if dynamic_size:
                dims.update({2: torch.export.Dim("height", min=32, max=512),
                             3: torch.export.Dim("width", min=32, max=512)})
            torch.onnx.export(model, (x,), path, dynamo=True, dynamic_shapes=(dims,), verbose=False)
        else:
            torch.onnx.export(model, (x,), path, dynamo=False, input_names=["x"], output_names=["logits"],
                              dynamic_axes={"x": {0: "batch", 2: "height", 3: "width"}})
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for shape in SHAPES if dynamic_size else [(1, 3, 224, 224), (3, 3, 224, 224)]:
        x = torch.randn(shape)
        with torch.no_grad():
            want = model(x).numpy()
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        assert got.shape == want.shape
        assert abs(got - want).max() <= 1e-4, f"{shape}: max |onnxruntime - torch| {abs(got - want).max():.2e}"


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPORTED)
@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
def test_onnx_export_runs_in_onnxruntime_with_dynamic_batch_and_size(name, dynamo, tmp_path):
    """Dynamic batch, height and width; the dynamo exporter takes timm's convnext_tiny itself with a dynamic batch
    only (its LayerNorm2d fixes the size under torch.export), so ours is held to that there."""
    pytest.importorskip("onnxscript")
    dynamic_size = not (dynamo and name.startswith("convnext"))
    _onnx_matches(timm.create_model(name).eval(), str(tmp_path / f"{name}.onnx"), dynamo, dynamic_size)


def test_onnx_graph_holds_standard_ops_only(tmp_path):
    onnx = pytest.importorskip("onnx")
    path = str(tmp_path / "pool.onnx")
    model = torch.nn.Sequential(MaxBlurPool2d(2, 2), BlurPool2d(4, filt_size=3, pad_mode="circular")).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, 4, 16, 16),), path, dynamo=False,
                          dynamic_axes={"input": {0: "b", 2: "h", 3: "w"}}, input_names=["input"])
    ops = {node.op_type for node in onnx.load(path).graph.node}
    assert "Conv" in ops and "MaxPool" in ops
    assert all(node.domain in ("", "ai.onnx") for node in onnx.load(path).graph.node)


@pytest.mark.parametrize("name,dynamic_size", [("resnet18_aa", True), ("mobilenetv2_100_aa", True),
                                               ("convnext_tiny_aa", False)])
@pytest.mark.slow
def test_torch_export_with_dynamic_shapes(name, dynamic_size):
    """Dynamic batch, height and width from 64 pixels up (timm's own resnet18 specialises a 1x1 last map below
    that); timm's convnext_tiny itself exports with a dynamic batch only (its LayerNorm2d fixes the size)."""
    model = timm.create_model(name).eval()
    dims = {0: torch.export.Dim("batch", min=1, max=32)}
    if dynamic_size:
        dims.update({2: torch.export.Dim("height", min=64, max=512), 3: torch.export.Dim("width", min=64, max=512)})
    program = torch.export.export(model, (torch.randn(2, 3, 96, 96),), dynamic_shapes=(dims,))
    assert not any("timm_aa" in str(node.target) for node in program.graph.nodes), "custom ops left in the graph"
    shapes = [(1, 3, 64, 80), (3, 3, 128, 96), (2, 3, 224, 224)] if dynamic_size else [(1, 3, 96, 96), (5, 3, 96, 96)]
    for shape in shapes:
        x = torch.randn(shape)
        with torch.no_grad():
            torch.testing.assert_close(program.module()(x), model(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", registered())
def test_meta_device_and_dtype_reach_every_tensor(name):
    """timm and transformers build on the meta device for fast loading; dtype= must reach our filters too."""
    model = timm.create_model(name, device="meta", dtype=torch.bfloat16)
    tensors = dict(model.named_parameters()) | dict(model.named_buffers())
    assert [k for k, t in tensors.items() if not t.is_meta] == []
    base = name.rpartition("_")[0]  # the timm base, which may keep a buffer in float32 itself (EVA's rope.bands)
    kept = set()
    if base in timm.list_models():
        ref = timm.create_model(base, device="meta", dtype=torch.bfloat16)
        kept = {k for k, t in ref.named_buffers() if t.dtype == torch.float32}
    other = [k for k, t in tensors.items() if t.is_floating_point() and t.dtype != torch.bfloat16 and k not in kept]
    assert other == []
    with torch.device("meta"):
        model = timm.create_model(name)
    assert [k for k, t in (dict(model.named_parameters()) | dict(model.named_buffers())).items() if not t.is_meta] == []


def test_antialias_output_follows_the_models_device_and_dtype():
    base = timm.create_model("resnet50d", device="meta", dtype=torch.float16)
    model = timm_aa.antialias(base)
    assert all(t.is_meta and (not t.is_floating_point() or t.dtype == torch.float16) for t in model.buffers())
    assert any(isinstance(m, (BlurPool2d, MaxBlurPool2d)) for m in model.modules())


@pytest.mark.parametrize("name", ["resnet18_aa", "convnext_tiny_aa"])
def test_fx_feature_extraction(name):
    from torchvision.models.feature_extraction import create_feature_extractor as tv_extractor

    model = timm.create_model(name).eval()
    nodes = {"resnet18_aa": ["layer2", "layer4"], "convnext_tiny_aa": ["stages.1", "stages.3"]}[name]
    x = torch.randn(1, 3, 96, 96)
    seen = {}
    hooks = [model.get_submodule(n).register_forward_hook(lambda m, a, o, n=n: seen.__setitem__(n, o)) for n in nodes]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    for extractor in (timm.models.create_feature_extractor, tv_extractor):
        graph = extractor(model, return_nodes=nodes)
        with torch.no_grad():
            out = graph(x)
        for n in nodes:
            torch.testing.assert_close(out[n], seen[n], rtol=0, atol=1e-5)
    features = timm.create_model(name, features_only=True, feature_cls="fx").eval()
    with torch.no_grad():
        assert len(features(x)) == len(features.feature_info)


@pytest.mark.parametrize("name", ["resnet18_aa", "resnet50d_aa", "mobilenetv2_100_aa", "densenet121_aa",
                                  "vgg11_bn_aa", "convnext_tiny_aa", "efficientnet_b0_aa", "regnety_016_aa"])
def test_torchscript_logits(name):
    model = timm.create_model(name).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(model)
    for shape in [(1, 3, 96, 96), (2, 3, 64, 80)]:
        x = torch.randn(shape)
        with torch.no_grad():
            torch.testing.assert_close(scripted(x), model(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["resnet18_aa", "mobilenetv2_100_aa", "alexnet_aa"])
def test_fx_graphs_script(name):
    """Issue 20, case 11: timm's model tests script fx graphs; our fx leaf functions were not scriptable. Both a plain
    torch.fx.symbolic_trace and timm's feature extractor (its leaf modules) now script and give the same numbers."""
    model = timm.create_model(name).eval()
    x = torch.randn(2, 3, 96, 96) if name != "alexnet_aa" else torch.randn(1, 3, 224, 224)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(torch.fx.symbolic_trace(model))
        last = timm.models.get_pretrained_cfg(name).classifier
        extractor = torch.jit.script(timm.models.create_feature_extractor(model, return_nodes=[last]))
    with torch.no_grad():
        want = model(x)
        torch.testing.assert_close(scripted(x), want, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(extractor(x)[last], want, rtol=1e-5, atol=1e-5)


def _polyphase_model(name: str) -> torch.nn.Module:
    """Random BatchNorm and LPS scorers far from zero, so that inputs choose different phases and a shortcut that took
    the wrong choice would show."""
    from conftest import randomize_batchnorm

    from timm_aa.layers import LPSPool2d

    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=10, zero_init_last=False)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, LPSPool2d):
                m.scorer[2].weight.normal_(0.0, 2.0)
    return randomize_batchnorm(model)


def _matches(traced, model: torch.nn.Module, batches=(1, 3)) -> None:
    for b in batches:
        x = torch.randn(b, 3, 64, 64)
        with torch.no_grad():
            torch.testing.assert_close(traced(x), model(x), rtol=1e-4, atol=1e-4)


def test_polyphase_shortcuts_export_and_trace():
    """Issue 30, 19: the shortcut takes its main pool's choice through a thread-local link, not module state;
    torch.export (dynamic batch) and fx feature extraction still give the eager outputs."""
    model = _polyphase_model("resnet18_lps")
    dims = {0: torch.export.Dim("batch", min=1, max=32)}
    program = torch.export.export(model, (torch.randn(2, 3, 64, 64),), dynamic_shapes=(dims,))
    _matches(program.module(), model)
    extractor = timm.models.create_feature_extractor(model, return_nodes=["layer4", "fc"])
    _matches(lambda x: extractor(x)["fc"], model)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18_aps", "resnet18_lps"])
def test_polyphase_shortcuts_compile_and_export_to_onnx(name, tmp_path):
    """torch.compile with fullgraph=True (a compiled model shared by four threads gives its serial outputs), strict
    torch.export, and both ONNX exporters in onnxruntime (dynamic batch)."""
    import threading

    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model = _polyphase_model(name)
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    _matches(compiled, model)
    inputs = [torch.randn(1 + i % 3, 3, 64, 64) for i in range(8)]
    with torch.no_grad():
        want = [compiled(x) for x in inputs]
    got = [None] * len(inputs)

    def work(t: int) -> None:
        with torch.no_grad():
            for i in range(t, len(inputs), 4):
                got[i] = compiled(inputs[i])

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(g is not None and torch.equal(g, w) for g, w in zip(got, want, strict=True))
    dims = {0: torch.export.Dim("batch", min=1, max=32)}
    _matches(torch.export.export(model, (torch.randn(2, 3, 64, 64),), dynamic_shapes=(dims,), strict=True).module(),
             model)
    for dynamo in (True, False):
        path = str(tmp_path / f"{name}-{dynamo}.onnx")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if dynamo:
                torch.onnx.export(model, (torch.randn(2, 3, 64, 64),), path, dynamo=True, dynamic_shapes=(dims,),
                                  verbose=False)
            else:
                torch.onnx.export(model, (torch.randn(2, 3, 64, 64),), path, dynamo=False, input_names=["x"],
                                  dynamic_axes={"x": {0: "batch"}})
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        name_in = session.get_inputs()[0].name
        _matches(lambda x, s=session, n=name_in: torch.from_numpy(s.run(None, {n: x.numpy()})[0]), model)
