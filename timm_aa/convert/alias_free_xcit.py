"""Model conversion: timm's XCiT in its alias-free form (Michaeli & Soudry, "Alias-Free ViT: Fractional Shift
Invariance via Linear Attention", NeurIPS 2025, arXiv:2510.22673; re-implemented from the paper and from AFC),
exactly invariant (in eval mode) to circular shifts of the input by fractional amounts as well as integers.

:func:`~timm_aa.alias_free.alias_free` calls :func:`alias_free_xcit` for an XCiT. What each part of timm's XCiT does
to a shift, and what changes (every parameter keeps its name and shape):

- patch embedding (3x3 convolutions at stride 2 + BatchNorm + GELU): each convolution becomes an
  :class:`~timm_aa.layers.AliasFreeConv2d` (circular, at stride 1, then the ideal low-pass and subsampling), each
  GELU an :class:`~timm_aa.layers.AliasFreeActivation` (one polynomial per channel); BatchNorm stays (in eval mode
  a per-channel affine map). The patch tokens are then a strictly band-limited H x W map;
- the Fourier position encoding adds a fixed function of each token's absolute position, which a shift does not
  move: removed (``pos_embed = None``); its projection is the one weight of timm's model that does not load;
- the layer norms (each token divided by its own deviation: a pointwise nonlinearity, which aliases) become
  :class:`~timm_aa.layers.AliasFreeTokenNorm` (the AFC layer norm: centred per token, one deviation over channels and
  tokens); the class token, one vector with no position, keeps the plain layer norm with the same weight and bias;
- cross-covariance attention (XCA) stays: q, k, v are per-token linear maps; q and k are L2-normalised along the
  tokens (over the whole grid: one norm per channel), and the (C/h x C/h) matrix ``q k^T`` holds inner products over
  the grid: both invariant for band-limited maps (Parseval); the softmax acts on that invariant matrix, and
  ``attn @ v`` mixes the channels of ``v`` with it, the same at every token: equivariant;
- local patch interaction (LPI): its depthwise convolutions (zero-padded) become circular ``AliasFreeConv2d``, its GELU
  an ``AliasFreeActivation``; the MLP's GELU an ``AliasFreeActivation`` on the token grid (channels last), the block
  handing the MLP its tokens as a (B, H, W, C) map;
- class attention (CaiT's, the last layers): the class token's query attends over all tokens through a softmax, the
  ``exp`` of each token's score: a pointwise nonlinearity of the patch tokens' score map, whose sum over the grid
  changes under fractional shifts (integer ones only permute the tokens). It becomes
  :func:`~timm_aa.layers.alias_free_softmax` (``exp`` replaced by its Taylor polynomial ``1 + s + s**2 / 2``, evaluated
  alias-free on the grid), which keeps every weight of the block in use and makes the class token exactly invariant.
  The class token's MLP (GELU on one vector) is invariant already: kept. Pooling the patch tokens instead would be
  invariant too, but would leave the class-attention weights unused;
- the head reads the class token (``global_pool='token'``) or the mean of the patch tokens (``'avg'``): both
  invariant; ``''`` gives the tokens (equivariant).

The model's class becomes :class:`AliasFreeXcit`, a subclass of timm's ``Xcit`` whose forward hands the token grid
to the class attention (its alias-free softmax upsamples the score map); its blocks become
:class:`AliasFreeXCABlock` / :class:`AliasFreeClassAttentionBlock`, subclasses that override ``forward`` only.
New parameters: the activations' ``coefficients`` only. Converting twice is a no-op.
"""

from __future__ import annotations

import torch
from timm.models import checkpoint
from timm.models.cait import ClassAttn
from timm.models.xcit import XCA, ClassAttentionBlock, XCABlock, Xcit
from torch import nn

from ..errors import TimmAAError
from ..infra.timm_private import FeatureGetterNet, feature_take_indices
from ..layers import AliasFreeActivation, AliasFreeConv2d, AliasFreeTokenNorm, alias_free_softmax
from .alias_free_parts import ACTS, param_like

Grid = tuple[int, int]


class AliasFreeXCABlock(XCABlock):
    """timm's ``XCABlock`` with its MLP applied to the tokens as a (B, H, W, C) map (its alias-free activation
    upsamples that map); otherwise timm's forward."""

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:  # noqa: N803 (timm's signature)
        x = x + self.drop_path1(self.gamma1 * self.attn(self.norm1(x)))
        x = x + self.drop_path3(self.gamma3 * self.local_mp(self.norm3(x), H, W))
        batch, tokens, channels = x.shape
        mlp = self.mlp(self.norm2(x).reshape(batch, H, W, channels)).reshape(batch, tokens, channels)
        return x + self.drop_path2(self.gamma2 * mlp)


class AliasFreeClassAttn(ClassAttn):
    """CaiT's class attention with :func:`~timm_aa.layers.alias_free_softmax` over the tokens (the class token first,
    then the patch tokens of an H x W ``grid``)."""

    def forward(self, x: torch.Tensor, grid: Grid) -> torch.Tensor:
        batch, tokens, channels = x.shape
        heads = self.num_heads
        q = self.q(x[:, 0]).reshape(batch, heads, 1, channels // heads) * self.scale
        k = self.k(x).reshape(batch, tokens, heads, channels // heads).transpose(1, 2)
        v = self.v(x).reshape(batch, tokens, heads, channels // heads).transpose(1, 2)
        attn = alias_free_softmax(q @ k.transpose(-2, -1), grid, num_prefix_tokens=1)
        x_cls = (self.attn_drop(attn) @ v).transpose(1, 2).reshape(batch, 1, channels)
        return self.proj_drop(self.proj(x_cls))


class AliasFreeClassAttentionBlock(ClassAttentionBlock):
    """timm's ``ClassAttentionBlock`` with the alias-free class attention and token norms (class token first)."""

    def forward(self, x: torch.Tensor, grid: Grid) -> torch.Tensor:
        x_norm1 = self.norm1(x, 1)
        x_attn = torch.cat([self.attn(x_norm1, grid), x_norm1[:, 1:]], dim=1)
        x = x + self.drop_path1(self.gamma1 * x_attn)
        x = self.norm2(x, 1) if self.tokens_norm else torch.cat([self.norm2(x[:, :1], 1), x[:, 1:]], dim=1)
        # as timm's: the residual adds the patch tokens to themselves (the class token's MLP leaves them alone)
        return x + self.drop_path2(torch.cat([self.gamma2 * self.mlp(x[:, :1]), x[:, 1:]], dim=1))


class AliasFreeXcit(Xcit):
    """timm's ``Xcit`` converted by :func:`alias_free_xcit`: no position encoding, and the token grid handed to the
    class-attention blocks; the same API (``forward_features``, ``forward_head``, ``forward_intermediates``)."""

    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, Grid]:
        x, grid = self.patch_embed(x)
        return self.pos_drop(x), grid

    def _block(self, block: nn.Module, x: torch.Tensor, *args: object) -> torch.Tensor:
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint(block, x, *args)
        return block(x, *args)

    def _norm(self, x: torch.Tensor, num_prefix_tokens: int) -> torch.Tensor:
        return self.norm(x, num_prefix_tokens) if isinstance(self.norm, AliasFreeTokenNorm) else self.norm(x)

    def forward_cls(self, x: torch.Tensor, grid: Grid) -> torch.Tensor:  # type: ignore[override]
        """Prepend the class token and run the class-attention blocks over the ``grid`` of patch tokens."""
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        for block in self.cls_attn_blocks:
            x = self._block(block, x, grid)
        return x

    def _finish(self, x: torch.Tensor, grid: Grid) -> torch.Tensor:
        if self.cls_attn_blocks is None:
            return self._norm(x, 0)
        return self._norm(self.forward_cls(x, grid), 1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x, grid = self._embed(x)
        for block in self.blocks:
            x = self._block(block, x, *grid)
        return self._finish(x, grid)

    def forward_intermediates(self, x: torch.Tensor, indices: int | list[int] | None = None, norm: bool = False,
                              stop_early: bool = False, output_fmt: str = "NCHW", intermediates_only: bool = False,
                              ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """timm's ``forward_intermediates``: the patch tokens after the blocks ``indices`` (as (B, C, H, W) maps for
        ``output_fmt='NCHW'``, tokens for ``'NLC'``), normed by the final norm with ``norm=True``."""
        if output_fmt not in ("NCHW", "NLC"):
            raise TimmAAError(f"output_fmt must be 'NCHW' or 'NLC', got {output_fmt!r}")
        take_indices, max_index = feature_take_indices(len(self.blocks), indices)
        batch = x.shape[0]
        x, grid = self._embed(x)
        intermediates = []
        for i, block in enumerate(self.blocks[: max_index + 1] if stop_early else self.blocks):
            x = self._block(block, x, *grid)
            if i in take_indices:
                intermediates.append(self._norm(x, 0) if norm else x)
        if output_fmt == "NCHW":
            intermediates = [y.reshape(batch, *grid, -1).permute(0, 3, 1, 2).contiguous() for y in intermediates]
        if intermediates_only:
            return intermediates
        return self._finish(x, grid), intermediates


def _retype(module: nn.Module, cls: type[nn.Module]) -> None:
    module.__class__ = cls  # the subclasses add no state: they override forward only


def _activation(module: nn.Module, name: str, width: int, layout: str, act_scale: float,
                like: nn.Module) -> AliasFreeActivation:
    if type(module) not in ACTS:
        raise TimmAAError(f"{name}: {type(module).__name__} has no alias-free form; alias_free converts XCiT with "
                          "GELU (or ReLU) activations")
    return AliasFreeActivation(width, ACTS[type(module)], act_scale, layout, **param_like(like, None))


def _norm(module: nn.Module, name: str) -> AliasFreeTokenNorm:
    if not isinstance(module, nn.LayerNorm):
        raise TimmAAError(f"{name}: {type(module).__name__} has no alias-free form; alias_free converts XCiT with "
                          "nn.LayerNorm norms")
    return AliasFreeTokenNorm.from_norm(module)


def _patch_embed_plan(model: Xcit, act_scale: float) -> list[tuple[nn.Module, str, nn.Module | None]]:
    swaps, width, last = [], None, None
    for name, module in model.patch_embed.proj.named_modules(prefix="patch_embed.proj"):
        parent, _, attr = name.rpartition(".")
        if isinstance(module, nn.Conv2d):
            swaps.append((model.get_submodule(parent), attr, AliasFreeConv2d.from_conv(module)))
            width, last = module.out_channels, module
        elif type(module) in ACTS:
            swaps.append((model.get_submodule(parent), attr, _activation(module, name, width, "NCHW", act_scale, last)))
        elif not isinstance(module, (nn.Sequential, nn.modules.batchnorm._BatchNorm, nn.Identity)):
            raise TimmAAError(f"{name}: {type(module).__name__} has no alias-free form in an XCiT patch embedding")
    return swaps


def _plan(model: Xcit, act_scale: float) -> tuple[list[tuple[nn.Module, str, nn.Module | None]],
                                                  list[tuple[nn.Module, type[nn.Module]]]]:
    swaps = _patch_embed_plan(model, act_scale) + [(model, "pos_embed", None)]
    retypes: list[tuple[nn.Module, type[nn.Module]]] = [(model, AliasFreeXcit)]
    for i, block in enumerate(model.blocks):
        name = f"blocks.{i}"
        if type(block) is not XCABlock or type(block.attn) is not XCA or not isinstance(block.mlp.fc1, nn.Linear):
            raise TimmAAError(f"{name}: {type(block).__name__} is not timm's XCABlock (XCA attention, linear MLP)")
        swaps += [(block, attr, _norm(getattr(block, attr), f"{name}.{attr}")) for attr in ("norm1", "norm2", "norm3")]
        lpi, mlp = block.local_mp, block.mlp
        swaps += [(lpi, attr, AliasFreeConv2d.from_conv(getattr(lpi, attr))) for attr in ("conv1", "conv2")]
        swaps += [(lpi, "act", _activation(lpi.act, f"{name}.local_mp.act", lpi.conv1.out_channels, "NCHW", act_scale,
                                           lpi.conv1)),
                  (mlp, "act", _activation(mlp.act, f"{name}.mlp.act", mlp.fc1.out_features, "NHWC", act_scale,
                                           mlp.fc1))]
        retypes.append((block, AliasFreeXCABlock))
    for i, block in enumerate(model.cls_attn_blocks or ()):
        name = f"cls_attn_blocks.{i}"
        if type(block) is not ClassAttentionBlock or type(block.attn) is not ClassAttn:
            raise TimmAAError(f"{name}: {type(block).__name__} is not timm's ClassAttentionBlock")
        swaps += [(block, attr, _norm(getattr(block, attr), f"{name}.{attr}")) for attr in ("norm1", "norm2")]
        retypes += [(block, AliasFreeClassAttentionBlock), (block.attn, AliasFreeClassAttn)]
    if not isinstance(model.norm, nn.Identity):  # pruned by timm's features_only
        swaps.append((model, "norm", _norm(model.norm, "norm")))
    return swaps, retypes


def xcit_inside(model: nn.Module) -> Xcit | None:
    """The timm XCiT that ``model`` is, or that a ``features_only`` wrapper of it holds; None for other models.

    Example:
        >>> import timm
        >>> type(xcit_inside(timm.create_model('xcit_nano_12_p16_224', features_only=True))).__name__
        'Xcit'
    """
    if isinstance(model, FeatureGetterNet):
        model = model.model
    return model if isinstance(model, Xcit) else None


def alias_free_xcit(model: Xcit, *, act_scale: float = 1.0) -> Xcit:
    """Convert timm's XCiT to its alias-free form, in place, and return it (see the module's notes).

    ``act_scale``: the standard deviation of the inputs the new activations' polynomials are fitted for.

    Example:
        >>> import timm
        >>> model = alias_free_xcit(timm.create_model('xcit_nano_12_p16_224', depth=2))
        >>> type(model).__name__, model.pos_embed, type(model.blocks[0].norm1).__name__
        ('AliasFreeXcit', None, 'AliasFreeTokenNorm')
        >>> from timm_aa.consistency import fractional_roll
        >>> x = torch.randn(1, 3, 64, 64)
        >>> logits, shifted = model.eval()(x), model(fractional_roll(x, torch.tensor([[0.5, 3.7]])))
        >>> bool(((shifted - logits).abs().max() / logits.abs().max()) < 1e-4)
        True
    """
    if isinstance(model, AliasFreeXcit):
        return model
    if not isinstance(model, Xcit):
        raise TypeError(f"alias_free_xcit takes timm's Xcit, got {type(model).__name__}")
    swaps, retypes = _plan(model, act_scale)  # plan first: fail before changing anything
    for parent, attr, new in swaps:
        if new is None:  # not a None submodule (whose weights load_state_dict would skip without a word): none at all
            delattr(parent, attr)
        setattr(parent, attr, new)
    for module, cls in retypes:
        _retype(module, cls)
    return model
