"""The CPU kernel (timm_aa.layers._backends.native): building, caching, falling back, threads, tiles and the adjoint.

Its numbers against pad-then-conv, forward and backward, are checked in test_fast_paths.py (``path`` fixture).
The cache's defences (issue 14, point 2) are tested against the attack itself: a planted library whose
constructor writes a marker file must never be opened.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import time

import pytest
import torch

from timm_aa.layers._backends import choose, native
from timm_aa.layers._backends.reference import blur_pool as reference_blur_pool
from timm_aa.layers._backends.tables import gather_table
from timm_aa.layers.filters import binomial_taps

COMPILER = shutil.which(native._compiler()[0])  # $CC, else Python's, else cc
needs_compiler = pytest.mark.skipif(COMPILER is None, reason="no C compiler on this machine")


@needs_compiler
def test_builds_once_into_the_cache(tmp_path):
    first = native.build(tmp_path)
    stamp = first.stat().st_mtime_ns
    assert native.build(tmp_path) == first and first.stat().st_mtime_ns == stamp  # reused, not rebuilt
    record = tmp_path / (first.name + ".sha256")
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name, record.name]  # no temp files left behind
    assert record.read_text().strip() == hashlib.sha256(first.read_bytes()).hexdigest()
    assert native._load(first).timm_aa_blur_f32 is not None


@needs_compiler
def test_kernel_is_there_where_a_compiler_is(monkeypatch):
    monkeypatch.delenv("TIMM_AA_BACKEND", raising=False)
    assert native.kernel() is not None
    assert choose(torch.zeros(1, 1, 4, 4)) == "native"
    assert choose(torch.zeros(1, 1, 4, 4, dtype=torch.float64)) == "native"
    assert choose(torch.zeros(1, 1, 4, 4, dtype=torch.bfloat16)) == "reference"


def test_without_a_compiler_it_falls_back_with_a_warning(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    monkeypatch.setenv("TIMM_AA_CACHE", str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="timm_aa.layers._backends.native"):
        assert native._try_load() is None
    assert "using the reference (pad-then-conv)" in caplog.text
    assert list(tmp_path.iterdir()) == []  # nothing half-written


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
    want = reference_blur_pool(x, list(taps), [2, 3], "replicate")
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
    back = native.blur(g, taps, (2, 2), mode, size=(23, 18))
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
    real = COMPILER
    cc.write_text(f'#!/bin/sh\nfor a in "$@"; do case "$a" in -fopenmp|-march=native) exit 1;; esac; done\n'
                  f'exec {real} "$@"\n')
    cc.chmod(0o755)
    monkeypatch.setenv("CC", str(cc))
    lib = native._load(native.build(tmp_path / "cache"))
    monkeypatch.setattr(native, "kernel", lambda: lib)
    x = torch.randn(2, 20, 33, 18)  # 40 planes: two full NCHW tiles and a rest, through the portable transposes
    want = reference_blur_pool(x, list(binomial_taps(4)), [2, 2], "reflect")
    torch.testing.assert_close(native.blur(x, binomial_taps(4), (2, 2), "reflect"), want, rtol=0, atol=1e-6)


# --- the cache's defences: issue 14, point 2 ----------------------------------------------------------------

PLANTED = r"""
#include <stdio.h>
__attribute__((constructor)) static void planted(void) {
    FILE *f = fopen(MARKER, "w");
    if (f) { fputs("the planted library ran", f); fclose(f); }
}
int timm_aa_blur_f32(void) { return 0; }
int timm_aa_blur_f64(void) { return 0; }
"""


@pytest.fixture
def planted(tmp_path):
    """``plant(folder)``: put a library whose constructor writes ``marker`` at the kernel's predictable path."""
    marker = tmp_path / "marker"
    source = tmp_path / "planted.c"
    source.write_text(PLANTED)
    name = native.build(tmp_path / "genuine").name  # the name the cache uses on this machine

    def plant(folder):
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run([COMPILER, "-shared", "-fPIC", f'-DMARKER="{marker}"',
                        "-o", str(folder / name), str(source)], check=True)
        return folder / name

    return plant, marker


def _fresh_load(monkeypatch, cache):
    monkeypatch.setenv("TIMM_AA_CACHE", str(cache))
    return native._try_load()


def _private_cache_with(plant, tmp_path):
    """A cache folder of ours (0700), with a planted library in it: the folder checks pass, the record is missing."""
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    return cache, plant(cache)


@needs_compiler
def test_a_planted_library_is_never_opened_but_rebuilt(planted, tmp_path, monkeypatch):
    plant, marker = planted
    cache, library = _private_cache_with(plant, tmp_path)
    lib = _fresh_load(monkeypatch, cache)
    assert not marker.exists()  # its constructor never ran
    assert lib is not None  # the genuine kernel, rebuilt:
    assert library.read_bytes() == (tmp_path / "genuine" / library.name).read_bytes()


@needs_compiler
@pytest.mark.parametrize("owner", ["group-writable", "world-writable", "another user"])
def test_a_cache_folder_others_can_write_is_not_used(planted, tmp_path, monkeypatch, caplog, owner):
    plant, marker = planted
    cache = tmp_path / "cache"
    plant(cache)
    if owner == "another user":
        if os.getuid() != 0:
            pytest.skip("making a folder owned by another user needs root")
        os.chown(cache, 65534, 65534)
        os.chmod(cache, 0o700)
    else:
        os.chmod(cache, 0o770 if owner == "group-writable" else 0o777)
    with caplog.at_level(logging.WARNING, logger="timm_aa.layers._backends.native"):
        assert _fresh_load(monkeypatch, cache) is None
    assert not marker.exists()
    assert "not trusted" in caplog.text and "TIMM_AA_CACHE" in caplog.text


@needs_compiler
def test_the_cache_folder_is_created_private_under_umask_000(tmp_path, monkeypatch):
    old = os.umask(0)
    try:
        library = native.build(tmp_path / "new" / "cache")
    finally:
        os.umask(old)
    assert (tmp_path / "new" / "cache").stat().st_mode & 0o777 == 0o700
    for path in (library, library.with_name(library.name + ".sha256")):
        assert path.stat().st_mode & 0o077 == 0, path  # nobody else may write the library or its record


@needs_compiler
def test_a_record_others_could_have_written_is_not_trusted(planted, tmp_path, monkeypatch):
    plant, marker = planted
    cache, library = _private_cache_with(plant, tmp_path)
    record = library.with_name(library.name + ".sha256")
    record.write_text(hashlib.sha256(library.read_bytes()).hexdigest())  # a matching digest...
    record.chmod(0o666)  # ...in a file anyone could have written
    assert _fresh_load(monkeypatch, cache) is not None
    assert not marker.exists()


@needs_compiler
@pytest.mark.parametrize("content", [b"", b"\x7fELF" + bytes(range(256)) * 8], ids=["empty", "random"])
def test_an_empty_or_broken_library_in_the_cache_is_rebuilt(tmp_path, monkeypatch, content):
    cache = tmp_path / "cache"
    name = native.build(tmp_path / "genuine").name
    cache.mkdir(mode=0o700)
    (cache / name).write_bytes(content)
    assert _fresh_load(monkeypatch, cache) is not None
    assert (cache / name).read_bytes() == (tmp_path / "genuine" / name).read_bytes()  # rebuilt


def _fake_compiler(tmp_path, script):
    cc = tmp_path / "fake-cc"
    cc.write_text("#!/bin/sh\n" + script + "\n")
    cc.chmod(0o755)
    return str(cc)


@needs_compiler
def test_a_compiler_that_writes_nothing_leaves_nothing_and_the_next_build_works(tmp_path, monkeypatch, caplog):
    cache, real = tmp_path / "cache", COMPILER
    monkeypatch.setenv("CC", _fake_compiler(tmp_path, "exit 0"))
    with caplog.at_level(logging.WARNING, logger="timm_aa.layers._backends.native"):
        assert _fresh_load(monkeypatch, cache) is None
    assert "empty library" in caplog.text and list(cache.iterdir()) == []
    monkeypatch.setenv("CC", real)
    assert _fresh_load(monkeypatch, cache) is not None


@needs_compiler
def test_a_built_library_that_does_not_load_is_removed(tmp_path, monkeypatch, caplog):
    """A compiler that exits 0 with garbage: the garbage is recorded as built, fails to load, and is removed."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("CC", _fake_compiler(tmp_path, 'while [ "$1" != "-o" ]; do shift; done; '
                                                      'head -c 4096 /dev/urandom > "$2"'))
    with caplog.at_level(logging.WARNING, logger="timm_aa.layers._backends.native"):
        assert _fresh_load(monkeypatch, cache) is None
    assert "rebuilt on the next start" in caplog.text and list(cache.iterdir()) == []


HANG = """
import time
from timm_aa.layers._backends import native
start = time.monotonic()
native.kernel(); native.kernel()
print(native.kernel() is None, round(time.monotonic() - start, 1))
"""


@needs_compiler
def test_a_hanging_compiler_is_stopped_with_one_warning(tmp_path):
    env = {**os.environ, "CC": _fake_compiler(tmp_path, "sleep 600 & wait"), "TIMM_AA_CACHE": str(tmp_path / "c"),
           "TIMM_AA_BUILD_TIMEOUT": "2"}
    start = time.monotonic()
    r = subprocess.run([sys.executable, "-c", HANG], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    fell_back, seconds = r.stdout.split()
    assert fell_back == "True" and float(seconds) < 10 and time.monotonic() - start < 30
    assert r.stderr.count("no CPU blur kernel") == 1 and "took longer than 2 s" in r.stderr
