"""The CPU kernel: blur and subsample in one pass over the input (``blur_kernel.c``), for float32 and float64.

Built on first use with the system's C compiler (``cc -O3 -march=native -fopenmp``, retried without OpenMP,
then without ``-march=native``; about a second, at most ``$TIMM_AA_BUILD_TIMEOUT`` seconds in all, default 30)
into ``$TIMM_AA_CACHE`` (default ``~/.cache/timm_aa``) and loaded with ctypes. Loading a library runs its code,
so the cache is trusted only as far as it is private: the folder is created 0700 and used only if it belongs
to the current user and group and others cannot write to it; the SHA-256 of each built library is recorded
beside it (a file with the same checks) and checked before ctypes opens it. A library without a matching
record (planted, truncated, left empty by a failed build) is rebuilt, not loaded; a build that fails or
times out is not kept. Without a usable compiler or cache (one logged warning), :func:`kernel` returns None and
the reference backend runs.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shlex
import signal
import stat
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path

import torch

from ...infra.env import read_env
from ...infra.fs import atomic_path, remove_stale_temps, sha256_file
from .layout import empty_like_layout, memory_format_of
from .tables import Taps, gather_table

log = logging.getLogger(__name__)
SOURCE = Path(__file__).with_name("blur_kernel.c")
GUARD = Path(__file__).with_name("build_guard.py")
FLAGS = ["-O3", "-march=native", "-fPIC", "-shared"]
OPENMP = ["-fopenmp"]  # PyTorch's wheels ship libgomp.so.1: loaded after torch, the kernel shares its threads
_lock = threading.Lock()


def _cache_dir() -> Path:
    return Path(read_env("TIMM_AA_CACHE") or Path.home() / ".cache" / "timm_aa")


def _compiler() -> list[str]:
    return shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")[:1]


def _cpu() -> str:
    """What ``-march=native`` depends on: the CPU's model and flags."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    return "\n".join(sorted({ln for ln in lines if ln.startswith(("model name", "flags"))}))


def _check_private(path: Path, what: str) -> os.stat_result:
    """``path``'s stat; OSError unless the current user owns it and group and others cannot write to it."""
    info = path.stat() if what == "folder" else path.lstat()  # a cache folder may be a link to one's own folder
    if what != "folder" and not stat.S_ISREG(info.st_mode):
        raise OSError(f"{path} is not a regular file: not trusted")
    if info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise OSError(f"the kernel cache {what} {path} belongs to user {info.st_uid} or may be written by others "
                      f"(mode {stat.filemode(info.st_mode)}): not trusted; remove it, or set TIMM_AA_CACHE to a "
                      "private folder")
    return info


def _private_dir(directory: Path) -> Path:
    """``directory``, created 0700 when missing, checked with :func:`_check_private`."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_private(directory, "folder")
    return directory


def _record(library: Path) -> Path:
    return library.with_name(library.name + ".sha256")


def _verified(library: Path) -> bool:
    """Whether ``library`` and its SHA-256 record are private files of ours and the digest matches."""
    try:
        _check_private(library, "file")
        _check_private(_record(library), "file")
        return _record(library).read_text().strip() == sha256_file(library)
    except OSError:
        return False


def build(directory: Path) -> Path:
    """Compile the kernel into the private folder ``directory`` (atomically: temp file, then rename), record its
    SHA-256 beside it, and return its path; a verified build already there is reused.

    Example:
        >>> import tempfile
        >>> build(Path(tempfile.mkdtemp())).suffix
        '.so'
    """
    directory = _private_dir(directory)
    remove_stale_temps(directory)  # what builds killed before they finished left
    source = SOURCE.read_bytes()
    key = hashlib.sha256(source + " ".join(_compiler() + FLAGS).encode() + _cpu().encode()).hexdigest()[:16]
    target = directory / f"blur_kernel-{key}.so"
    if _verified(target):
        return target
    with atomic_path(target) as tmp:
        _compile_first_that_works(tmp)
        os.chmod(tmp, 0o700)  # the linker creates its output afresh, with the umask's mode
        if os.path.getsize(tmp) == 0:
            raise OSError(f"the C compiler {_compiler()[0]} reported success but wrote an empty library")
        digest = sha256_file(tmp)
    with atomic_path(_record(target), mode=0o600) as tmp:
        Path(tmp).write_text(digest + "\n")
    return target


def _build_timeout() -> float:
    return read_env("TIMM_AA_BUILD_TIMEOUT", 30.0, float)


def _run(command: list[str], timeout: float) -> None:
    """Run ``command`` in a process group of its own, under :mod:`.build_guard` (which kills the group if this
    process dies); on timeout kill the group (a compiler driver's children too)."""
    guarded = [sys.executable, "-I", "-S", str(GUARD), str(os.getpid())] if sys.executable else []
    proc = subprocess.Popen([*guarded, *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=max(timeout, 0.1))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, command, out, err)


def _compile_first_that_works(output: str) -> None:
    """With OpenMP; else one thread (a compiler without OpenMP); else also without ``-march=native``. All attempts
    together get ``TIMM_AA_BUILD_TIMEOUT`` seconds; a timeout ends them (subprocess.TimeoutExpired)."""
    deadline = time.monotonic() + _build_timeout()
    attempts = [FLAGS + OPENMP, FLAGS, [f for f in FLAGS if f != "-march=native"]]
    for i, flags in enumerate(attempts):
        try:
            _run([*_compiler(), *flags, "-o", output, str(SOURCE)], deadline - time.monotonic())
            return
        except subprocess.CalledProcessError:
            if i == len(attempts) - 1:
                raise


def _load(path: Path) -> ctypes.CDLL:
    """Open a built kernel with ctypes, after checking it against its SHA-256 record (opening runs its code)."""
    if not _verified(path):
        raise OSError(f"{path} does not match the SHA-256 recorded when it was built: not loaded")
    lib = ctypes.CDLL(str(path))
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    for name in ("timm_aa_blur_f32", "timm_aa_blur_f64"):
        fn = getattr(lib, name)
        fn.argtypes = [ptr, ptr, i64, i64, i64, i64, i64, i64, i64, ptr, ptr, i64, ptr, ptr, i64, ctypes.c_int]
        fn.restype = ctypes.c_int
    return lib


@functools.lru_cache(maxsize=1)
@torch.compiler.assume_constant_result  # torch.compile takes the result as is: it cannot trace into the lock
def kernel() -> ctypes.CDLL | None:
    """The loaded kernel, building it on first use; None where it cannot be built (then the reference runs).

    Example:
        >>> kernel().timm_aa_blur_f32.restype.__name__  # on a machine with a C compiler
        'c_int'
    """
    with _lock:  # threads that come first at once build once: the others find the verified build
        return _try_load()


def _try_load() -> ctypes.CDLL | None:
    path = None
    try:
        path = build(_cache_dir())
        return _load(path)
    except (OSError, AttributeError, subprocess.SubprocessError) as e:
        if isinstance(e, subprocess.TimeoutExpired):
            why = f"the C compiler took longer than {_build_timeout():.0f} s, TIMM_AA_BUILD_TIMEOUT"
        elif path is not None:  # built but broken: removed, so that the next process builds afresh
            for stale in (path, _record(path)):
                stale.unlink(missing_ok=True)
            why = f"{e}; removed, it is rebuilt on the next start"
        else:
            why = f"{e} {(getattr(e, 'stderr', b'') or b'').decode()[-500:]}"
        log.warning("timm_aa: no CPU blur kernel (%s); using the reference (pad-then-conv)", why.strip())
        return None


def _threads(work: int) -> int:
    return 1 if work < 1 << 15 else torch.get_num_threads()


def blur(x: torch.Tensor, taps: Taps, stride: tuple[int, int], mode: str,
         size: tuple[int, int] | None = None) -> torch.Tensor:
    """The blur pool of ``x`` (N, C, H, W), or with ``size`` its transpose onto a map of that size (the backward).

    Keeps channels_last input channels_last; anything else comes back NCHW-contiguous. Needs :func:`kernel`.

    Example:
        >>> blur(torch.ones(1, 2, 5, 5), (0.5, 0.5), (2, 2), 'reflect').shape
        torch.Size([1, 2, 3, 3])
    """
    lib = kernel()
    if lib is None:
        raise RuntimeError("the CPU blur kernel is not available (see timm_aa.layers._backends.native)")
    n, c, h, w = x.shape
    rows_in, cols_in = size or (h, w)
    ri, rw = gather_table(rows_in, taps, stride[0], mode, size is not None, x.dtype)
    ci, cw = gather_table(cols_in, taps, stride[1], mode, size is not None, x.dtype)
    ho, wo = ri.shape[1], ci.shape[1]
    x = x.resolve_neg()  # the kernel reads raw memory: materialise a lazily negated view
    channels_last = memory_format_of(x) == torch.channels_last
    if not channels_last:
        x = x.contiguous()
    y = empty_like_layout(x, ho, wo)
    fn = lib.timm_aa_blur_f32 if x.dtype == torch.float32 else lib.timm_aa_blur_f64
    status = fn(x.data_ptr(), y.data_ptr(), n, h, w, c, not channels_last, ho, wo, ri.data_ptr(), rw.data_ptr(),
                ri.shape[0], ci.data_ptr(), cw.data_ptr(), ci.shape[0], _threads(y.numel() * len(taps)))
    if status:
        raise MemoryError("the CPU blur kernel ran out of memory")
    return y
