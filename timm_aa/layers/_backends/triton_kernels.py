"""The GPU backend: Triton kernels that blur and subsample in one pass, reading the input once from memory.

Each program computes a block of outputs, consecutive in the output's memory order (so stores and, in
channels_last, loads are coalesced). Per output pixel it sums the filter's taps, read through the gather tables
of :mod:`.tables` (padding, taps and subsampling of each axis folded into indices and weights), so every pad
mode, stride and map size is the same kernel, and the backward pass is the same kernel with the transposed
tables. Neighbouring pixels share their input rows, which the
cache serves: memory traffic is the input read once and the output written once. Zero weights (table fill)
are skipped, never multiplied, so a NaN or Inf lands exactly where pad-then-conv puts it.

MaxBlurPool fuses the stride-1 max-pool into the blur: each tap reads the max of its window instead of one
pixel (no dense max map in memory). Its backward blurs the gradient back onto the dense map's grid (the
transposed tables), then routes each dense position's gradient to its window's first maximum in row-major
order (recomputed, as ``max_pool2d`` chooses it: a NaN wins, ties go to the first).

Sums run in float32 (float64 for float64 tensors) and are rounded once to the tensor's dtype. With
``TRITON_INTERPRET=1`` set before this module is imported, the kernels run on CPU tensors (tests without a GPU).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .layout import empty_like_layout, memory_format_of
from .reference import dense_size
from .tables import Taps, gather_table

NEG_INF = tl.constexpr(float("-inf"))


@triton.jit
def _unflatten(flat, C, OH, OW, CHANNELS_LAST: tl.constexpr):
    """(n, c, i, j) of flat output indices, counted in the output's memory order."""
    if CHANNELS_LAST:  # ((n * OH + i) * OW + j) * C + c
        c = flat % C
        t = flat // C
        j = t % OW
        t = t // OW
        i = t % OH
        n = t // OH
    else:  # ((n * C + c) * OH + i) * OW + j
        j = flat % OW
        t = flat // OW
        i = t % OH
        t = t // OH
        c = t % C
        n = t // C
    return n, c, i, j


@triton.jit
def _wrap(v, n, CIRCULAR: tl.constexpr):
    """v itself, or v wrapped into [0, n) if CIRCULAR."""
    if CIRCULAR:
        v = ((v % n) + n) % n
    return v


@triton.jit
def _window_max(base, r, col, h, w, sh, sw, mask, KH: tl.constexpr, KW: tl.constexpr, PH: tl.constexpr,
                PW: tl.constexpr, CIRCULAR: tl.constexpr, ACC: tl.constexpr):
    """Max of the KH x KW window of dense-map position (r, col): -inf outside the map, or wrapped if CIRCULAR."""
    best = tl.where(mask, NEG_INF, NEG_INF).to(ACC)
    for dr in tl.static_range(KH):
        rr = _wrap(r - PH + dr, h, CIRCULAR)
        for dc in tl.static_range(KW):
            cc = _wrap(col - PW + dc, w, CIRCULAR)
            ok = mask & (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
            v = tl.load(base + rr * sh + cc * sw, mask=ok, other=NEG_INF).to(ACC)
            best = tl.maximum(best, v, propagate_nan=tl.PropagateNan.ALL)
    return best


# sizes and the strides that are never 1 change with every input: compiled once, not once per size
_SIZES = ["total", "C", "H", "W", "OH", "OW", "MH", "MW", "sxn", "sxh", "syn", "syh"]


@triton.jit(do_not_specialize=_SIZES)
def _blur_kernel(x_ptr, y_ptr, ri_ptr, rw_ptr, ci_ptr, cw_ptr, total,
                 C, H, W, OH, OW,
                 sxn, sxc, sxh, sxw, syn, syc, syh, syw,
                 MH, MW, BLOCK: tl.constexpr, CHANNELS_LAST: tl.constexpr,
                 ACC: tl.constexpr, WIDE: tl.constexpr,
                 MAX: tl.constexpr, KH: tl.constexpr, KW: tl.constexpr, PH: tl.constexpr, PW: tl.constexpr,
                 CIRCULAR: tl.constexpr):
    """y[n, c, i, j] = sum_p sum_q rw[p, i] cw[q, j] v(ri[p, i], ci[q, j]), v = x there, or with MAX its window max."""
    flat = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    if WIDE:  # more than 2**31 outputs
        flat = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = flat < total
    n, c, i, j = _unflatten(flat, C, OH, OW, CHANNELS_LAST)
    base = x_ptr + n.to(tl.int64) * sxn + c.to(tl.int64) * sxc
    acc = tl.where(mask, 0.0, 0.0).to(ACC)
    for p in range(MH):
        r = tl.load(ri_ptr + p * OH + i, mask=mask, other=0)
        wr = tl.load(rw_ptr + p * OH + i, mask=mask, other=0.0).to(ACC)
        part = tl.where(mask, 0.0, 0.0).to(ACC)
        for q in range(MW):
            col = tl.load(ci_ptr + q * OW + j, mask=mask, other=0)
            wc = tl.load(cw_ptr + q * OW + j, mask=mask, other=0.0).to(ACC)
            if MAX:
                v = _window_max(base, r, col, H, W, sxh, sxw, mask, KH, KW, PH, PW, CIRCULAR, ACC)
            else:
                v = tl.load(base + r * sxh + col * sxw, mask=mask, other=0.0).to(ACC)
            part += tl.where(wc != 0.0, v * wc, 0.0)
        acc += tl.where(wr != 0.0, part * wr, 0.0)
    out = y_ptr + n.to(tl.int64) * syn + c.to(tl.int64) * syc + i * syh + j * syw
    tl.store(out, acc.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit(do_not_specialize=["total", "C", "H", "W", "MHT", "MWT", "sxn", "sxh", "sgn", "sgh", "syn", "syh"])
def _max_route_kernel(x_ptr, g_ptr, y_ptr, total,
                      C, H, W, MHT, MWT,
                      sxn, sxc, sxh, sxw, sgn, sgc, sgh, sgw, syn, syc, syh, syw,
                      BLOCK: tl.constexpr, CHANNELS_LAST: tl.constexpr, ACC: tl.constexpr, WIDE: tl.constexpr,
                      KH: tl.constexpr, KW: tl.constexpr, PH: tl.constexpr, PW: tl.constexpr,
                      CIRCULAR: tl.constexpr):
    """grad_x[h, w] = sum of g[m] over the dense windows m whose first maximum (row-major) is x[h, w]."""
    flat = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    if WIDE:
        flat = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = flat < total
    n, c, h, w = _unflatten(flat, C, H, W, CHANNELS_LAST)
    xbase = x_ptr + n.to(tl.int64) * sxn + c.to(tl.int64) * sxc
    gbase = g_ptr + n.to(tl.int64) * sgn + c.to(tl.int64) * sgc
    acc = tl.where(mask, 0.0, 0.0).to(ACC)
    for dr in tl.static_range(KH):
        mr = _wrap(h + PH - dr, H, CIRCULAR)  # the window in which this pixel sits at row offset dr
        for dc in tl.static_range(KW):
            mc = _wrap(w + PW - dc, W, CIRCULAR)
            ok = mask & (mr >= 0) & (mr < MHT) & (mc >= 0) & (mc < MWT)
            best = tl.where(ok, NEG_INF, NEG_INF).to(ACC)
            best_r = tl.where(ok, -1, -1)
            best_c = tl.where(ok, -1, -1)
            for a in tl.static_range(KH):
                xr = _wrap(mr - PH + a, H, CIRCULAR)
                for b in tl.static_range(KW):
                    xc = _wrap(mc - PW + b, W, CIRCULAR)
                    inside = ok & (xr >= 0) & (xr < H) & (xc >= 0) & (xc < W)
                    v = tl.load(xbase + xr * sxh + xc * sxw, mask=inside, other=NEG_INF).to(ACC)
                    better = inside & ((v > best) | (v != v) | (best_r < 0))
                    best = tl.where(better, v, best)
                    best_r = tl.where(better, a, best_r)
                    best_c = tl.where(better, b, best_c)
            hit = ok & (best_r == dr) & (best_c == dc)
            g = tl.load(gbase + mr * sgh + mc * sgw, mask=hit, other=0.0).to(ACC)
            acc += tl.where(hit, g, 0.0)
    out = y_ptr + n.to(tl.int64) * syn + c.to(tl.int64) * syc + h * syh + w * syw
    tl.store(out, acc.to(y_ptr.dtype.element_ty), mask=mask)


BLOCK = 1024  # outputs a program
ROUTE_BLOCK = 256  # the max-pool backward unrolls KH * KW window scans per pixel: fewer pixels a thread


def _grid(total: int, block: int = BLOCK) -> tuple[int]:
    return (triton.cdiv(total, block),)


def _acc(dtype: torch.dtype) -> tl.dtype:
    return tl.float64 if dtype == torch.float64 else tl.float32


def _launch_blur(x: torch.Tensor, taps: Taps, stride: tuple[int, int], mode: str, table: tuple[int, int],
                 adjoint: bool = False, max_args: tuple | None = None) -> torch.Tensor:
    wdtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    ri, rw = gather_table(table[0], taps, stride[0], mode, adjoint, wdtype, x.device)
    ci, cw = gather_table(table[1], taps, stride[1], mode, adjoint, wdtype, x.device)
    kh, kw, ph, pw = max_args or (1, 1, 0, 0)
    y = empty_like_layout(x, ri.shape[1], ci.shape[1])
    total = y.numel()
    _blur_kernel[_grid(total)](x, y, ri, rw, ci, cw, total, x.shape[1], x.shape[2], x.shape[3], y.shape[2],
                               y.shape[3], *x.stride(), *y.stride(), MH=ri.shape[0], MW=ci.shape[0], BLOCK=BLOCK,
                               CHANNELS_LAST=memory_format_of(y) == torch.channels_last, ACC=_acc(x.dtype),
                               WIDE=total >= 2**31 - BLOCK, MAX=max_args is not None, KH=kh, KW=kw, PH=ph, PW=pw,
                               CIRCULAR=mode == "circular")
    return y


def blur(x: torch.Tensor, taps: Taps, stride: tuple[int, int], mode: str,
         size: tuple[int, int] | None = None) -> torch.Tensor:
    """The blur pool of ``x`` (N, C, H, W), or with ``size`` its transpose onto a map of that size (the backward).

    Keeps channels_last input channels_last; other layouts come back NCHW-contiguous.

    Example:
        >>> blur(torch.ones(1, 1, 4, 4), (0.5, 0.5), (2, 2), 'reflect')  # CUDA, or CPU with TRITON_INTERPRET=1
        tensor([[[[1., 1.],
                  [1., 1.]]]])
    """
    return _launch_blur(x, taps, stride, mode, size or (x.shape[2], x.shape[3]), adjoint=size is not None)


def max_blur(x: torch.Tensor, kernel_size: tuple[int, int], padding: tuple[int, int], taps: Taps,
             stride: tuple[int, int], mode: str) -> torch.Tensor:
    """Max-pool at stride 1, blur and subsample in one pass (no dense max map in memory).

    Example:
        >>> max_blur(torch.arange(16.).view(1, 1, 4, 4), (2, 2), (0, 0), (0.5, 0.5), (2, 2), 'reflect')
        tensor([[[[ 7.5000,  8.5000],
                  [11.5000, 12.5000]]]])
    """
    window = (kernel_size[0], kernel_size[1], padding[0], padding[1])
    return _launch_blur(x, taps, stride, mode, dense_size(x, kernel_size, padding, mode == "circular"),
                        max_args=window)


def max_blur_backward(grad_out: torch.Tensor, x: torch.Tensor, kernel_size: tuple[int, int],
                      padding: tuple[int, int], taps: Taps, stride: tuple[int, int], mode: str) -> torch.Tensor:
    """The gradient of :func:`max_blur` with respect to ``x`` (the max recomputed, as ``max_pool2d`` routes it).

    Example:
        >>> x = torch.arange(16.).view(1, 1, 4, 4)
        >>> max_blur_backward(torch.ones(1, 1, 2, 2), x, (2, 2), (0, 0), (0.5, 0.5), (2, 2), 'reflect')[0, 0]
        tensor([[0.0000, 0.0000, 0.0000, 0.0000],
                [0.0000, 0.2500, 0.5000, 0.2500],
                [0.0000, 0.5000, 1.0000, 0.5000],
                [0.0000, 0.2500, 0.5000, 0.2500]])
    """
    circular = mode == "circular"
    mh, mw = dense_size(x, kernel_size, padding, circular)
    g_dense = blur(grad_out.contiguous(memory_format=memory_format_of(x)), taps, stride, mode, (mh, mw))
    grad = empty_like_layout(x, x.shape[2], x.shape[3])
    total = grad.numel()
    _max_route_kernel[_grid(total, ROUTE_BLOCK)](x, g_dense, grad, total, x.shape[1], x.shape[2], x.shape[3], mh, mw,
                                                 *x.stride(), *g_dense.stride(), *grad.stride(), BLOCK=ROUTE_BLOCK,
                                                 CHANNELS_LAST=memory_format_of(grad) == torch.channels_last,
                                                 ACC=_acc(x.dtype), WIDE=total >= 2**31 - ROUTE_BLOCK,
                                                 KH=kernel_size[0], KW=kernel_size[1], PH=padding[0], PW=padding[1],
                                                 CIRCULAR=circular)
    return grad
