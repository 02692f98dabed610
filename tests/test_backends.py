"""Every backend (reference, the CPU kernel, Triton) gives the specification's numbers: pad, then depthwise conv
(and ``F.max_pool2d`` at stride 1 for MaxBlurPool), computed in float64.

Forced with ``TIMM_AA_BACKEND``; without a GPU the Triton kernels run in Triton's interpreter on CPU tensors
(``TRITON_INTERPRET=1``, set in conftest.py), so CI checks them too. Every filter 1-7, the four pad modes,
strides 1-3 and anisotropic ones, tiny and odd sizes, both memory layouts, forward and gradients, NaN/Inf
placement, double backward and ``torch.compile``.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from timm_aa.errors import TimmAAError
from timm_aa.layers import BlurPool2d, MaxBlurPool2d, blur_pool2d, max_blur_pool2d
from timm_aa.layers._backends import HAS_TRITON, choose, native, reference
from timm_aa.layers._backends.layout import memory_format_of
from timm_aa.layers.filters import binomial_taps

CUDA = torch.cuda.is_available()
BACKENDS = ["reference", "native", "triton"]
MODES = ["reflect", "replicate", "zeros", "circular"]
STRIDES = [(1, 1), (2, 2), (3, 3), (1, 2), (3, 2)]
SIZES = [(1, 1), (1, 2), (2, 1), (2, 2), (3, 5), (4, 4), (5, 3), (7, 9), (9, 8)]
LAYOUTS = ["nchw", "channels_last"]


@pytest.fixture(params=[b if b != "triton" else pytest.param(b, marks=pytest.mark.slow) for b in BACKENDS])
def backend(request, monkeypatch):
    """Force one backend for the test; its device is CUDA for Triton where there is a GPU, else the CPU."""
    name = request.param
    if name == "native" and native.kernel() is None:
        pytest.skip("no C compiler here: the CPU kernel cannot be built")
    if name == "triton" and not HAS_TRITON:
        pytest.skip("Triton is not installed")
    monkeypatch.setenv("TIMM_AA_BACKEND", name)
    return name


def device_of(backend: str) -> str:
    return "cuda" if backend == "triton" and CUDA else "cpu"


def layout(x: torch.Tensor, name: str) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if name == "channels_last" else x


def spec_blur(x: torch.Tensor, k: int, stride, mode: str) -> torch.Tensor:
    return reference.blur_pool(x, list(binomial_taps(k)), list(stride), mode)


def spec_max_blur(x: torch.Tensor, kernel, stride, padding, k: int, mode: str) -> torch.Tensor:
    dense = reference.dense_max_pool(x, list(kernel), list(padding), mode == "circular")
    return spec_blur(dense, k, stride, mode)


def check_against_spec(run, spec, x64: torch.Tensor, fmt: str, device: str, atol: float = 1e-10) -> None:
    """Forward and input gradient of ``run`` (on ``device``, layout ``fmt``) against ``spec`` on the CPU; the
    kernels keep channels_last input channels_last."""
    x = layout(x64.to(device), fmt).requires_grad_(True)
    xs = x64.clone().requires_grad_(True)
    got, want = run(x), spec(xs)
    assert got.shape == want.shape
    if choose(x) != "reference" and memory_format_of(x) == torch.channels_last:
        assert memory_format_of(got) == torch.channels_last or got.shape[2] * got.shape[3] == 1
    torch.testing.assert_close(got.cpu(), want, rtol=0, atol=atol)
    g = torch.randn_like(want)
    (grad,) = torch.autograd.grad(got, x, g.to(device))
    (grad_want,) = torch.autograd.grad(want, xs, g)
    torch.testing.assert_close(grad.cpu(), grad_want, rtol=0, atol=atol)


def grid(filt_size: int):
    """Every pad mode with every stride, three sizes each: across the strides of a mode all nine sizes (1x1 to
    9x8) come up, in both layouts (the Triton interpreter is slow: the full product would take minutes)."""
    for mode, (s, stride) in itertools.product(MODES, enumerate(STRIDES)):
        for t in range(3):
            index = (3 * s + t + filt_size) % len(SIZES)
            yield mode, stride, SIZES[index], LAYOUTS[(index + s) % 2]


@pytest.mark.parametrize("filt_size", range(1, 8))
def test_blur_forward_and_gradient_every_mode_stride_size(backend, filt_size):
    device = device_of(backend)
    for mode, stride, size, fmt in grid(filt_size):
        x = torch.randn(2, 3, *size, dtype=torch.float64)
        check_against_spec(lambda t: blur_pool2d(t, filt_size, stride, mode),  # noqa: B023
                           lambda t: spec_blur(t, filt_size, stride, mode), x, fmt, device)  # noqa: B023


@pytest.mark.parametrize("fmt", LAYOUTS)
def test_blur_float32_larger_maps(backend, fmt):
    """float32 at ResNet-like sizes (odd ones included), 1e-6 from the float64 specification."""
    device = device_of(backend)
    for size, k, stride in [((28, 28), 4, (2, 2)), ((57, 41), 3, (2, 2)), ((33, 34), 5, (2, 1)), ((17, 40), 7, 3)]:
        x = torch.randn(2, 16, *size)
        got = blur_pool2d(layout(x.to(device), fmt), k, stride, "reflect").cpu()
        torch.testing.assert_close(got.double(), spec_blur(x.double(), k, (stride, stride) if isinstance(stride, int)
                                                           else stride, "reflect"), rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_within_its_rounding(backend, dtype):
    if backend == "native":
        pytest.skip("the CPU kernel takes float32/float64 only (half precision on CPU runs the reference)")
    device = device_of(backend)
    x = torch.randn(2, 8, 15, 14)
    for fmt in LAYOUTS:
        got = blur_pool2d(layout(x.to(device, dtype), fmt), 4).float().cpu()
        want = spec_blur(x.to(dtype).double(), 4, (2, 2), "reflect").float()
        eps = torch.finfo(dtype).eps
        torch.testing.assert_close(got, want, rtol=eps, atol=eps)  # one rounding of a sum of weight-1 terms


MAX_CONFIGS = [((2, 2), (2, 2), (0, 0)), ((3, 3), (2, 2), (1, 1)), ((3, 3), (2, 2), (0, 0)),
               ((2, 3), (2, 1), (1, 1)), ((3, 3), (3, 3), (1, 1))]


@pytest.mark.parametrize("mode", MODES)
def test_max_blur_forward_and_gradient(backend, mode):
    device = device_of(backend)
    sizes = [(3, 3), (6, 7), (13, 10)]
    for i, ((kernel, stride, padding), filt) in enumerate(itertools.product(MAX_CONFIGS, (1, 2, 4, 5))):
        size, fmt = sizes[i % 3], LAYOUTS[i // 3 % 2]  # every size and layout with every config, not all products
        x = torch.randn(2, 3, *size, dtype=torch.float64)
        check_against_spec(lambda t: max_blur_pool2d(t, kernel, stride, padding, filt, mode),  # noqa: B023
                           lambda t: spec_max_blur(t, kernel, stride, padding, filt, mode), x, fmt, device)  # noqa: B023


@pytest.mark.parametrize("fmt", LAYOUTS)
def test_max_blur_gradient_with_ties_goes_where_max_pool_sends_it(backend, fmt):
    """Windows with equal maxima (ReLU zeros, small integers): the first one in row-major order takes it."""
    device = device_of(backend)
    for kernel, stride, padding in MAX_CONFIGS[:3]:
        for mode in ("reflect", "circular"):
            x = torch.randint(0, 3, (2, 3, 12, 11)).double()
            check_against_spec(lambda t: max_blur_pool2d(t, kernel, stride, padding, 4, mode),  # noqa: B023
                               lambda t: spec_max_blur(t, kernel, stride, padding, 4, mode), x, fmt, device)  # noqa: B023


def nonfinite(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.isnan(t).cpu(), torch.isinf(t).cpu()


@pytest.mark.parametrize("op", ["blur", "max_blur"])
@pytest.mark.parametrize("fmt", LAYOUTS)
def test_nan_and_inf_stay_where_the_reference_puts_them(backend, op, fmt):
    """One NaN and one Inf in the input, then one NaN in the incoming gradient: the same output and gradient
    positions turn non-finite as with pad-then-conv (and max-pool), no more."""
    device = device_of(backend)
    for mode, stride in [("reflect", (2, 2)), ("zeros", (2, 2)), ("circular", (3, 2)), ("replicate", (1, 1))]:
        x = torch.randn(1, 4, 16, 16)
        x[0, 1, 7, 8] = float("nan")
        x[0, 2, 0, 15] = float("inf")
        if op == "blur":
            run = lambda t: blur_pool2d(t, 4, stride, mode)  # noqa: B023, E731
            spec = lambda t: spec_blur(t, 4, stride, mode)  # noqa: B023, E731
        else:
            run = lambda t: max_blur_pool2d(t, 2, stride, 0, 4, mode)  # noqa: B023, E731
            spec = lambda t: spec_max_blur(t, (2, 2), stride, (0, 0), 4, mode)  # noqa: B023, E731
        got, want = run(layout(x.to(device), fmt)), spec(x)
        assert torch.equal(nonfinite(got)[0], nonfinite(want)[0]) and torch.equal(nonfinite(got)[1],
                                                                                     nonfinite(want)[1])
        clean = torch.randn(1, 4, 16, 16)
        xg = layout(clean.to(device), fmt).requires_grad_(True)
        xr = clean.clone().requires_grad_(True)
        out, out_ref = run(xg), spec(xr)
        g = torch.randn_like(out_ref)
        g[0, 1, 2, 3] = float("nan")
        (grad,) = torch.autograd.grad(out, xg, g.to(device))
        (grad_ref,) = torch.autograd.grad(out_ref, xr, g)
        assert torch.equal(nonfinite(grad)[0], nonfinite(grad_ref)[0]), f"{mode}: NaN gradient spread differs"
        assert int(nonfinite(grad)[0].sum()) > 0


def test_double_backward(backend):
    """Gradient penalties differentiate the gradient: the backward ops have their own backward. (Under the Triton
    interpreter a 9x8 map took 10 minutes of gradgradcheck: a 5x4 one has the same odd and even sides.)"""
    device = device_of(backend)
    size = (5, 4) if backend == "triton" and device == "cpu" else (9, 8)
    for fmt in LAYOUTS:
        x = layout(torch.randn(1, 2, *size, dtype=torch.float64, device=device), fmt).requires_grad_(True)
        assert torch.autograd.gradgradcheck(lambda t: blur_pool2d(t, 4, 2, "reflect"), (x,))
        assert torch.autograd.gradgradcheck(lambda t: max_blur_pool2d(t, 2, 2, 0, 3, "circular"), (x,))


@pytest.mark.slow
def test_torch_compile_fullgraph(backend):
    device = device_of(backend)
    for module in (BlurPool2d(3, 4, 2), MaxBlurPool2d(3, 2, 1, filt_size=3)):
        module = module.to(device)
        compiled = torch.compile(module, fullgraph=True)
        for shape in [(2, 3, 9, 7), (1, 3, 2, 2)]:
            x = torch.randn(shape, device=device, requires_grad=True)
            got, want = compiled(x), module(x)
            torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
            g = torch.randn_like(want)
            torch.testing.assert_close(torch.autograd.grad(got, x, g)[0], torch.autograd.grad(want, x, g)[0],
                                       rtol=0, atol=1e-6)


def test_the_default_choice(monkeypatch):
    monkeypatch.delenv("TIMM_AA_BACKEND", raising=False)
    assert choose(torch.zeros(1, 1, 2, 2, dtype=torch.bfloat16)) == "reference"
    assert choose(torch.zeros(1, 1, 2, 2)) == ("native" if native.kernel() is not None else "reference")
    assert choose(torch.zeros(1, 1, 2, 2, dtype=torch.float16)) == "reference"
    if CUDA:  # no GPU table has shown Triton faster yet (docs/speed.md): the reference
        assert choose(torch.zeros(1, 1, 2, 2, device="cuda")) == "reference"


def test_cuda_runs_triton_only_for_measured_classes_and_never_on_a_gpu_it_cannot_compile_for(monkeypatch):
    """Issue 28: CUDA tensors ran the never-measured Triton kernels by default, and on a P100 or GTX 10xx (CUDA
    capability 6.x) Triton's compiler raises in the first forward pass. The classes a measured table shows faster
    (TRITON_DEFAULT) run Triton; a GPU below capability 7.0 never does, even forced (one line)."""
    from types import SimpleNamespace

    from timm_aa.layers._backends import choice

    monkeypatch.delenv("TIMM_AA_BACKEND", raising=False)
    tensor = SimpleNamespace(device=torch.device("cuda", 0), dtype=torch.bfloat16)  # stands for a CUDA tensor
    monkeypatch.setattr(choice, "HAS_TRITON", True)
    monkeypatch.setattr(choice, "triton_class", lambda x: ("bfloat16", "channels_last"))
    monkeypatch.setattr(choice.torch.cuda, "get_device_capability", lambda device: (9, 0))  # an H100
    assert choice.TRITON_DEFAULT == frozenset() and choice.choose(tensor) == "reference"
    monkeypatch.setattr(choice, "TRITON_DEFAULT", frozenset({("bfloat16", "channels_last")}))
    assert choice.choose(tensor) == "triton"
    monkeypatch.setattr(choice.torch.cuda, "get_device_capability", lambda device: (6, 0))  # a P100
    assert choice.choose(tensor) == "reference"
    monkeypatch.setenv("TIMM_AA_BACKEND", "triton")
    with pytest.raises(TimmAAError, match="capability 7.0 or newer"):
        choice.choose(tensor)


def test_a_forced_backend_that_cannot_run_the_tensor_says_so(monkeypatch):
    monkeypatch.setenv("TIMM_AA_BACKEND", "native")
    with pytest.raises(TimmAAError, match="TIMM_AA_BACKEND=native needs a CPU float32/float64 tensor"):
        blur_pool2d(torch.randn(1, 1, 4, 4, dtype=torch.bfloat16))
    monkeypatch.setenv("TIMM_AA_BACKEND", "cuda")
    with pytest.raises(TimmAAError, match=r"TIMM_AA_BACKEND='cuda' is not a backend"):
        blur_pool2d(torch.randn(1, 1, 4, 4))


def test_integer_and_non_tensor_inputs_are_refused():
    for fn in (blur_pool2d, max_blur_pool2d, BlurPool2d(), MaxBlurPool2d()):
        with pytest.raises(TypeError, match=r"floating-point tensor, got torch.int64; convert it first"):
            fn(torch.ones(1, 2, 6, 6, dtype=torch.long))
    with pytest.raises(TypeError, match="takes a torch.Tensor, got list"):
        blur_pool2d([[1.0]])


def test_cpu_max_blur_chunks_equal_one_pass(monkeypatch):
    """On the CPU MaxBlurPool runs a few samples at a time (the dense max map stays in cache)."""
    from timm_aa.layers._backends import ops

    x = torch.randn(4, 6, 40, 36, requires_grad=True)
    want = max_blur_pool2d(x, 3, 2, 1)
    (g_want,) = torch.autograd.grad(want.sum(), x)
    monkeypatch.setattr(ops, "CHUNK_ELEMENTS", 20000)  # one sample a chunk
    got = max_blur_pool2d(x, 3, 2, 1)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    torch.testing.assert_close(torch.autograd.grad(got.sum(), x)[0], g_want, rtol=0, atol=0)
    torch.testing.assert_close(got, spec_max_blur(x.detach(), (3, 3), (2, 2), (1, 1), 4, "reflect"), rtol=0,
                               atol=1e-6)


def test_reference_pad_matches_torch_where_torch_works():
    for mode, (h, w) in itertools.product(["reflect", "replicate", "circular"], [(5, 6), (3, 3)]):
        x = torch.randn(1, 2, h, w)
        torch.testing.assert_close(reference.gather_pad2d(x, [1, 2, 2, 1], mode), F.pad(x, [1, 2, 2, 1], mode=mode),
                                   rtol=0, atol=0)


HOPPER_SCRIPT = """
import sys
import triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource, compile
from timm_aa.layers._backends import triton_kernels as tk

def ptx(fn, types, consts):
    sig = {n: "constexpr" if n in consts else types.get(n, "i32") for n in fn.arg_names}
    src = ASTSource(fn, sig, constexprs={(fn.arg_names.index(k),): v for k, v in consts.items()})
    return compile(src, target=GPUTarget("cuda", 90, 32)).asm["ptx"]

for dtype, cl, window in [("fp32", False, None), ("bf16", True, None), ("fp16", True, (2, 2, 0, 0)),
                          ("fp64", False, (3, 3, 1, 1))]:
    w = "fp64" if dtype == "fp64" else "fp32"
    types = {"x_ptr": "*" + dtype, "y_ptr": "*" + dtype, "ri_ptr": "*i32", "rw_ptr": "*" + w, "ci_ptr": "*i32",
             "cw_ptr": "*" + w}
    kh, kw, ph, pw = window or (1, 1, 0, 0)
    acc = tl.float64 if dtype == "fp64" else tl.float32
    out = ptx(tk._blur_kernel, types, dict(BLOCK=tk.BLOCK, CHANNELS_LAST=cl, ACC=acc, WIDE=False,
                                           MAX=window is not None, KH=kh, KW=kw, PH=ph, PW=pw, CIRCULAR=False))
    assert ".target sm_90" in out
out = ptx(tk._max_route_kernel, {"x_ptr": "*bf16", "g_ptr": "*bf16", "y_ptr": "*bf16"},
          dict(BLOCK=tk.ROUTE_BLOCK, CHANNELS_LAST=True, ACC=tl.float32, WIDE=False, KH=2, KW=2, PH=0, PW=0,
               CIRCULAR=True))
assert ".target sm_90" in out
print("compiled")
"""


@pytest.mark.skipif(not HAS_TRITON, reason="Triton is not installed")
def test_triton_kernels_compile_to_ptx_for_hopper():
    """The interpreter does not compile; this does, for an H100 (sm_90), without a GPU: what the device runs."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    r = subprocess.run([sys.executable, "-c", HOPPER_SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0 and "compiled" in r.stdout, r.stderr[-3000:]


@pytest.mark.parametrize("shape", [(0, 8, 9, 7), (2, 0, 9, 7)], ids=["batch 0", "0 channels"])
def test_an_empty_batch_gives_an_empty_output(backend, shape):
    """Issue 20, case 9: MaxBlurPool2d(2, 2) raised IndexError on a batch of 0 on the CPU kernel path; every backend
    now returns the empty output timm's layers give, gradient included."""
    device = device_of(backend)
    for fmt in LAYOUTS:
        x = layout(torch.randn(shape, device=device), fmt).requires_grad_(True)
        for run, size in ((lambda t: max_blur_pool2d(t, 2, 2), (4, 3)), (lambda t: max_blur_pool2d(t, 3, 2, 1), (5, 4)),
                          (lambda t: blur_pool2d(t, 4, 2), (5, 4)),
                          (lambda t: BlurPool2d(shape[1], 3, (1, 2))(t), (9, 4))):  # as the sizes of 9x7 maps
            y = run(x)
            assert y.shape == (*shape[:2], *size) and y.numel() == 0
            y.sum().backward()
            assert x.grad.shape == x.shape


def test_the_backend_is_chosen_once_per_call(monkeypatch):
    """Issue 21: BlurPool2d's forward asked for its backend twice (in the layer and again inside the op)."""
    from timm_aa.layers._backends import ops

    calls = []
    real = ops.choose
    monkeypatch.setattr(ops, "choose", lambda x: calls.append(1) or real(x))
    x = torch.randn(2, 8, 16, 16, requires_grad=True)
    for layer in (BlurPool2d(8), MaxBlurPool2d(2, 2), MaxBlurPool2d(3, 2, 1, filt_size=3)):
        calls.clear()
        layer(x).sum().backward()
        assert calls == [1], type(layer).__name__
