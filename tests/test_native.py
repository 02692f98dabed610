"""The CPU kernel (timm_aa.layers.native): building, caching, falling back, threads, tiles and the adjoint.

Its numbers against pad-then-conv, forward and backward, are checked in test_fast_paths.py (``path`` fixture).
"""

from __future__ import annotations

import logging

import pytest
import torch

from timm_aa.layers import binomial_filter2d
from timm_aa.layers._backends import native
from timm_aa.layers._backends.reference import conv_blur_pool as reference_blur_pool2d
from timm_aa.layers._backends.tables import gather_table
from timm_aa.layers.filters import binomial_taps

needs_compiler = pytest.mark.skipif(native.compiler_path() is None, reason="no C compiler on this machine")


@needs_compiler
def test_builds_once_into_the_cache(tmp_path):
    first = native.build(tmp_path)
    stamp = first.stat().st_mtime_ns
    assert native.build(tmp_path) == first and first.stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temp files left behind
    assert native._load(first).timm_aa_kernel_version() == native.VERSION


@needs_compiler
def test_kernel_is_there_where_a_compiler_is():
    assert native.kernel() is not None
    assert native.usable(torch.zeros(1, 1, 4, 4)) and native.usable(torch.zeros(1, 1, 4, 4, dtype=torch.float64))
    assert not native.usable(torch.zeros(1, 1, 4, 4, dtype=torch.bfloat16))


def test_without_a_compiler_it_falls_back_with_a_warning(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    monkeypatch.setenv("TIMM_AA_CACHE", str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="timm_aa.layers.native"):
        assert native._try_load() is None
    assert "using the PyTorch paths" in caplog.text
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("TIMM_AA_NATIVE", "0")
    assert native._try_load() is None


def test_a_broken_build_is_not_loaded(monkeypatch, tmp_path):
    monkeypatch.setattr(native, "FLAGS", ["-O3", "-fPIC", "-shared", "-fno-such-flag"])  # does not compile
    monkeypatch.setenv("TIMM_AA_CACHE", str(tmp_path))
    assert native._try_load() is None
    assert list(tmp_path.iterdir()) == []


def test_apply_without_the_kernel_says_so(monkeypatch):
    monkeypatch.setattr(native, "kernel", lambda: None)
    with pytest.raises(RuntimeError, match="not available"):
        native.blur(torch.zeros(1, 1, 4, 4), (0.5, 0.5), (2, 2), "reflect")


@needs_compiler
@pytest.mark.parametrize("fmt", ["nchw", "channels_last"])
def test_same_bits_on_one_thread_and_many(monkeypatch, fmt):
    x = torch.randn(4, 40, 29, 31)
    if fmt == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    taps = binomial_taps(4)
    monkeypatch.setattr(native, "_threads", lambda work: 1)
    one = native.blur(x, taps, (2, 2), "reflect")
    monkeypatch.setattr(native, "_threads", lambda work: 3)
    torch.testing.assert_close(native.blur(x, taps, (2, 2), "reflect"), one, rtol=0, atol=0)


@needs_compiler
@pytest.mark.parametrize("planes", [(1, 1), (1, 16), (2, 17), (3, 40)])
def test_nchw_tiles_of_sixteen_planes_and_a_rest(planes):
    x = torch.randn(*planes, 19, 14, dtype=torch.float64)
    taps = binomial_taps(5)
    want = reference_blur_pool2d(x, binomial_filter2d(5, torch.float64), [2, 3], "replicate")
    torch.testing.assert_close(native.blur(x, taps, (2, 3), "replicate"), want, rtol=0, atol=1e-12)


@needs_compiler
@pytest.mark.parametrize("mode", ["reflect", "replicate", "zeros", "circular"])
@pytest.mark.parametrize("fmt", ["nchw", "channels_last"])
def test_adjoint_is_the_transpose(mode, fmt):
    """<A x, g> = <x, A^T g>, with the sizes of a backward pass (A^T g has x's size and layout)."""
    x = torch.randn(2, 5, 23, 18, dtype=torch.float64)
    if fmt == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    taps = binomial_taps(4)
    y = native.blur(x, taps, (2, 2), mode)
    g = torch.randn_like(y)
    back = native.blur(g, taps, (2, 2), mode, adjoint=True, size=(23, 18))
    assert back.shape == x.shape and back.stride() == x.stride()
    torch.testing.assert_close((y * g).sum(), (x * back).sum(), rtol=1e-12, atol=0)


def test_gather_table_rows():
    idx, w = gather_table(5, binomial_taps(3), 2, "zeros", False, torch.float32)
    # columns: outputs 0..2; a = 0..2: their non-zeros. Outputs 0 and 2 lost a tap to zero padding, so their
    # third entry repeats their first index with weight 0
    assert idx.tolist() == [[0, 1, 3], [1, 2, 4], [0, 3, 3]]
    assert w.tolist() == [[0.5, 0.25, 0.25], [0.25, 0.5, 0.5], [0.0, 0.25, 0.0]]
    idx_t, w_t = gather_table(5, binomial_taps(3), 2, "zeros", True, torch.float32)
    assert idx_t.shape[1] == 5  # the transpose: one row per input position


@needs_compiler
def test_lazily_negated_input():
    x = torch.randn(1, 2, 8, 8)
    want = -native.blur(x, binomial_taps(2), (2, 2), "reflect")
    torch.testing.assert_close(native.blur(torch._neg_view(x), binomial_taps(2), (2, 2), "reflect"), want)


@needs_compiler
def test_builds_without_openmp_or_march_native(monkeypatch, tmp_path):
    """A compiler that rejects -fopenmp and -march=native still gets a (one-thread, portable) kernel."""
    cc = tmp_path / "cc"
    real = native.compiler_path()
    cc.write_text(f'#!/bin/sh\nfor a in "$@"; do case "$a" in -fopenmp|-march=native) exit 1;; esac; done\n'
                  f'exec {real} "$@"\n')
    cc.chmod(0o755)
    monkeypatch.setenv("CC", str(cc))
    lib = native._load(native.build(tmp_path / "cache"))
    monkeypatch.setattr(native, "kernel", lambda: lib)
    x = torch.randn(2, 20, 33, 18)  # 40 planes: two full NCHW tiles and a rest, through the portable transposes
    want = reference_blur_pool2d(x, binomial_filter2d(4), [2, 2], "reflect")
    torch.testing.assert_close(native.blur(x, binomial_taps(4), (2, 2), "reflect"), want, rtol=0, atol=1e-6)
