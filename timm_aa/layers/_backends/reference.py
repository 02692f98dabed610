"""The reference backend, and the specification the others are tested against: pad, then a strided depthwise
convolution (Zhang's computation); for MaxBlurPool, ``F.max_pool2d`` at stride 1 first.

Plain PyTorch ops, so autograd, ``torch.compile``, ``torch.export``, ONNX export, fx and TorchScript all see
through it. Where ``F.pad`` refuses the map (reflect or circular padding wider than it: a 1x1 map, a 2x2 map with
a filter of 4), and always when exporting or scripting, padding gathers: reflect continues by repeated reflection
(period ``2 * (n - 1)``, torch's values wherever torch works; a 1-pixel axis replicates), circular wraps as often
as needed, with indices computed from the traced sizes, so one graph serves every input size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .tracing import exporting


def pad_index(n: int, before: int, after: int, mode: str, device: torch.device) -> torch.Tensor:
    """Which input index each of ``before + n + after`` padded positions copies (``mode`` not 'zeros').

    Only tensor arithmetic on ``n``, so a traced or symbolic size stays symbolic.

    Example:
        >>> pad_index(3, 2, 2, 'reflect', torch.device('cpu')).tolist()
        [2, 1, 0, 1, 2, 1, 0]
    """
    idx = torch.arange(-before, n + after, device=device)
    size = torch.zeros((), dtype=idx.dtype, device=device) + n
    if mode == "circular":
        return torch.remainder(idx, size)
    if mode == "replicate":
        return torch.minimum(idx.clamp(min=0), size - 1)
    period = torch.clamp(2 * size - 2, min=1)  # a 1-pixel axis: every index is 0
    q = torch.remainder(idx, period)
    return torch.where(q < size, q, period - q)


def gather_pad2d(x: torch.Tensor, pads: list[int], mode: str) -> torch.Tensor:
    """Pad the last two dims by ``pads = [left, right, top, bottom]`` by gathering: any map size >= 1, and one
    graph for every size when traced (TorchScript compiles it too).

    Example:
        >>> gather_pad2d(torch.arange(3.).view(1, 1, 1, 3), [2, 2, 0, 0], 'reflect').flatten().tolist()
        [2.0, 1.0, 0.0, 1.0, 2.0, 1.0, 0.0]
    """
    if mode == "zeros":
        return F.pad(x, pads, mode="constant", value=0.0)
    x = x.index_select(-2, pad_index(x.shape[-2], pads[2], pads[3], mode, x.device))
    return x.index_select(-1, pad_index(x.shape[-1], pads[0], pads[1], mode, x.device))


def pad2d(x: torch.Tensor, pads: list[int], mode: str) -> torch.Tensor:
    """Pad the last two dims by ``pads = [left, right, top, bottom]`` with any map size >= 1.

    ``F.pad`` where it takes the map (it is faster), else (and whenever exporting or scripting)
    :func:`gather_pad2d`.

    Example:
        >>> pad2d(torch.ones(1, 1, 1, 1), [1, 2, 1, 2], 'reflect').shape
        torch.Size([1, 1, 4, 4])
    """
    if mode == "zeros" or torch.jit.is_scripting() or exporting():
        return gather_pad2d(x, pads, mode)
    h, w = x.shape[-2], x.shape[-1]
    if mode == "reflect":
        fits = max(pads[0], pads[1]) < w and max(pads[2], pads[3]) < h
    else:
        fits = mode == "replicate" or (max(pads[0], pads[1]) <= w and max(pads[2], pads[3]) <= h)
    return F.pad(x, pads, mode=mode) if fits else gather_pad2d(x, pads, mode)


def blur_pads(k: int) -> list[int]:
    """Zhang's asymmetric padding ``[left, right, top, bottom]`` for a filter of size ``k``.

    Example:
        >>> blur_pads(4)
        [1, 2, 1, 2]
    """
    before, after = (k - 1) // 2, k // 2
    return [before, after, before, after]


def blur_weight(taps: list[float], channels: int, like: torch.Tensor) -> torch.Tensor:
    """The (channels, 1, k, k) depthwise weight ``outer(taps, taps)`` in ``like``'s dtype and device.

    Example:
        >>> blur_weight([0.5, 0.5], 3, torch.zeros(1)).shape
        torch.Size([3, 1, 2, 2])
    """
    t = torch.tensor(taps, dtype=torch.float64)
    k = len(taps)
    return torch.outer(t, t).to(device=like.device, dtype=like.dtype).view(1, 1, k, k).expand(channels, 1, k, k)


def blur_pool(x: torch.Tensor, taps: list[float], stride: list[int], pad_mode: str) -> torch.Tensor:
    """Pad ``x`` by ``pad_mode`` (Zhang's asymmetric amounts), then a strided depthwise conv, ``outer(taps, taps)``.

    Example:
        >>> blur_pool(torch.arange(16.).view(1, 1, 4, 4), [0.5, 0.5], [2, 2], 'reflect').flatten().tolist()
        [2.5, 4.5, 10.5, 12.5]
    """
    k = len(taps)
    if k == 1:
        return x[:, :, :: stride[0], :: stride[1]] * (taps[0] * taps[0])
    padded = pad2d(x, blur_pads(k), pad_mode)
    if torch.jit.is_tracing():  # one-channel conv over the N * C planes: traced, the weight keeps a constant shape
        n, c, h, w = padded.shape
        y = F.conv2d(padded.reshape(n * c, 1, h, w), blur_weight(taps, 1, x), stride=stride)
        return y.reshape(n, c, y.shape[2], y.shape[3])
    return F.conv2d(padded, blur_weight(taps, x.shape[1], x), stride=stride, groups=x.shape[1])


def circular_pads(kernel_size: list[int], padding: list[int]) -> list[int]:
    """``[left, right, top, bottom]`` that make a stride-1 max-pool wrap around and keep the map size.

    Example:
        >>> circular_pads([3, 2], [1, 0])
        [0, 1, 1, 1]
    """
    return [padding[1], kernel_size[1] - 1 - padding[1], padding[0], kernel_size[0] - 1 - padding[0]]


def dense_size(x: torch.Tensor, kernel_size: list[int], padding: list[int], circular: bool) -> tuple[int, int]:
    """(H, W) of the stride-1 max-pooled map of ``x`` (circular padding keeps the size).

    Example:
        >>> x = torch.zeros(1, 1, 112, 7)
        >>> dense_size(x, [2, 2], [0, 0], False), dense_size(x, [3, 3], [1, 1], False)
        ((111, 6), (112, 7))
    """
    if circular:
        return x.shape[2], x.shape[3]
    return x.shape[2] + 2 * padding[0] - kernel_size[0] + 1, x.shape[3] + 2 * padding[1] - kernel_size[1] + 1


def dense_max_pool(x: torch.Tensor, kernel_size: list[int], padding: list[int], circular: bool) -> torch.Tensor:
    """``max_pool2d`` at stride 1: padded with -inf, or (``circular``) by wrapping, keeping the map size.

    Example:
        >>> dense_max_pool(torch.arange(9.).view(1, 1, 3, 3), [2, 2], [0, 0], False).flatten().tolist()
        [4.0, 5.0, 7.0, 8.0]
    """
    if circular:
        return F.max_pool2d(gather_pad2d(x, circular_pads(kernel_size, padding), "circular"), kernel_size, 1)
    return F.max_pool2d(x, kernel_size, 1, padding)


def max_blur_pool(x: torch.Tensor, kernel_size: list[int], padding: list[int], taps: list[float],
                  stride: list[int], pad_mode: str) -> torch.Tensor:
    """:func:`dense_max_pool`, then :func:`blur_pool`.

    Example:
        >>> max_blur_pool(torch.randn(1, 4, 9, 9), [2, 2], [0, 0], [0.5, 0.5], [2, 2], 'reflect').shape
        torch.Size([1, 4, 4, 4])
    """
    return blur_pool(dense_max_pool(x, kernel_size, padding, pad_mode == "circular"), taps, stride, pad_mode)
