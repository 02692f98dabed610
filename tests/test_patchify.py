"""Patch-grid anchoring (issue 29): the anchor layers, and antialias(model, 'aps') on timm's 19 patchify families,
exactly invariant to circular shifts; refusals; LPS; threads and determinism."""

from __future__ import annotations

import copy
import functools
import threading

import numpy as np
import pytest
import timm
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from patchify_models import FAMILIES, family_model, structured_images

from timm_aa import TimmAAError, antialias
from timm_aa.convert.patchify import AnchoredEmbed, anchor_site
from timm_aa.layers import BlurPool2d, LearnedPatchAnchor2d, PatchAnchor2d, patch_anchor2d, patch_anchor_index
from timm_aa.layers.anchor import anchor_target


def _shifts(size: int) -> list[tuple[int, int]]:
    """The issue's shifts: none a multiple of any family's patch size (4, 8, 14, 16)."""
    return [(3, 7), (size // 2 + 5, -11), (-9, 21)]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def _roll(x: torch.Tensor, shift: tuple[int, int]) -> torch.Tensor:
    return torch.roll(x, shift, dims=(2, 3))


# --- the anchor layers -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size,patch", [((32, 32), 4), ((37, 45), (4, 8)), ((7, 5), 16), ((64, 48), 14),
                                        ((224, 224), 16)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_anchor_moves_with_the_shift_and_the_anchored_image_does_not(size, patch, dtype):
    """Any size (not only multiples of the patch, patches larger than the image too), every dtype, a batch whose
    images choose different anchors."""
    x = structured_images(4, max(size), seed=1)[..., : size[0], : size[1]].to(dtype)
    index = patch_anchor_index(x, patch)
    assert len(set(map(tuple, index.tolist()))) > 1  # different images, different anchors
    anchored = patch_anchor2d(x, patch)
    for shift in [(3, 7), (-9, 21), (size[0] // 2 + 5, -11), (1, 0)]:
        moved = patch_anchor_index(_roll(x, shift), patch)
        assert torch.equal(moved, (index + torch.tensor(shift)) % torch.tensor(size))
        assert torch.equal(patch_anchor2d(_roll(x, shift), patch), anchored)
    assert torch.equal(PatchAnchor2d(patch)(x), anchored)
    target = torch.tensor(anchor_target(size, patch))
    assert anchored.dtype == dtype
    for i in range(4):  # a roll of the image: the same values
        assert torch.equal(anchored[i], torch.roll(x[i], tuple((target - index[i]).tolist()), (1, 2)))


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), ph=st.integers(1, 16), pw=st.integers(1, 16),
       a=st.integers(-50, 50), b=st.integers(-50, 50), seed=st.integers(0, 2**16))
def test_anchor_is_equivariant_for_any_size_patch_and_shift(h, w, ph, pw, a, b, seed):
    x = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(seed))
    index = patch_anchor_index(x, (ph, pw))
    moved = patch_anchor_index(_roll(x, (a, b)), (ph, pw))
    assert torch.equal(moved, (index + torch.tensor([a, b])) % torch.tensor([h, w]))
    assert torch.equal(patch_anchor2d(_roll(x, (a, b)), (ph, pw)), patch_anchor2d(x, (ph, pw)))


def test_anchor_lands_on_the_centre_token():
    x = torch.zeros(2, 3, 40, 36)
    x[0, :, 5, 9] = 1.0  # a dot: the 4x4 window it starts wins
    x[1, :, 33, 2] = -2.0
    out = PatchAnchor2d(4)(x)
    assert patch_anchor_index(x, 4).tolist() == [[5, 9], [33, 2]]
    assert out[0, :, 20, 16].tolist() == [1.0] * 3 and out[1, :, 20, 16].tolist() == [-2.0] * 3


def test_ties_flat_images_dots_and_real_digits():
    """Ties need a shift-equivariant rule: a flat image (every roll is itself), a dot and a blob on a flat background
    (every 4x4 window that holds them ties on contrast), and the digits (blocky strokes on black: 67 of 450 images
    tie on the patch's contrast energy, none after the wider window) all come out the same under every shift."""
    flat = torch.full((1, 3, 16, 16), 0.5)
    assert torch.equal(patch_anchor2d(flat, 4), flat)
    dot = torch.zeros(1, 3, 32, 32)
    dot[..., 5, 9] = 1.0
    blob = dot.clone()
    blob[..., 5:7, 9:11] = 1.0
    blob[..., 20, 20] = -1.0
    for image in (dot, blob):
        rolled = torch.cat([_roll(image, (a, b)) for a in range(0, 32, 3) for b in range(0, 32, 3)])
        out = patch_anchor2d(rolled, 4)
        assert torch.equal(out, out[:1].expand_as(out))
    from timm_aa.training.demo_data import digits_splits
    from timm_aa.training.demo_recipe import CANVAS, CROP

    val = digits_splits().val
    lo = (CANVAS - CROP) // 2
    digits = torch.stack([torch.from_numpy(np.asarray(val.load(i), dtype=np.float32)) for i in range(120)])
    digits = digits.permute(0, 3, 1, 2)[..., lo:lo + CROP, lo:lo + CROP] / 255 - 0.45
    anchored = patch_anchor2d(digits, 4)
    for shift in [(3, 7), (-8, 5), (25, -11)]:
        assert torch.equal(patch_anchor2d(_roll(digits, shift), 4), anchored)


def test_lps_anchor_starts_as_aps_and_learns():
    torch.manual_seed(0)
    anchor = LearnedPatchAnchor2d(3, patch_size=4)
    x = structured_images(4, 32)
    assert torch.equal(anchor.eval()(x), PatchAnchor2d(4)(x))
    anchor.train()
    out = anchor(x)  # the forward value is one sampled roll of each image, exactly
    assert all(any(torch.equal(out[i], torch.roll(x[i], (a, b), (1, 2))) for a in range(32) for b in range(32))
               for i in range(4))
    (out * torch.randn_like(out)).sum().backward()
    assert anchor.scorer[2].weight.grad is not None and anchor.scorer[2].weight.grad.abs().sum() > 0
    with torch.no_grad():
        anchor.scorer[2].weight.normal_()
    anchor.eval()
    assert torch.equal(anchor(_roll(x, (3, 7))), anchor(x))  # a trained scorer is still shift-equivariant
    assert not torch.equal(anchor(x), PatchAnchor2d(4)(x))
    with pytest.raises(TimmAAError, match="built for 3 channels"):
        anchor(torch.randn(1, 4, 8, 8))


# --- the 19 families ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_family_is_exactly_invariant_to_circular_shifts(family):
    """Issue 29, acceptance 1: small random models whose logits depend on their input; timm's state dict loads
    strictly; the anchored logits agree within 1e-4 relative (in fact bit for bit) under shifts that are not
    multiples of the patch size, the unconverted model's do not."""
    model, size = family_model(family)
    base = copy.deepcopy(model)
    assert antialias(model, "aps", pad_mode="circular", stem=True) is model
    assert isinstance(anchor_site(model)[2], AnchoredEmbed)
    assert list(model.state_dict()) == list(base.state_dict())
    model.load_state_dict(base.state_dict(), strict=True)
    x = structured_images(3, size)
    with torch.no_grad():
        ref, base_ref = model(x), base(x)
        assert ((ref - ref.mean(0)).std() / ref.std()).item() > 0.05  # the logits depend on the input
        for shift in _shifts(size):
            assert _rel(model(_roll(x, shift)), ref) <= 1e-4, shift
            assert _rel(base(_roll(x, shift)), base_ref) > 1e-3, shift


@pytest.mark.parametrize("family", ["vision_transformer", "swin_transformer", "convmixer", "hiera"])
def test_lps_converts_the_families_and_starts_as_aps(family):
    model, size = family_model(family)
    aps = antialias(copy.deepcopy(model), "aps", pad_mode="circular", stem=True)
    lps = antialias(model, "lps", pad_mode="circular", stem=True).eval()
    new = [k for k in lps.state_dict() if k not in aps.state_dict()]
    assert new and all(".anchor.scorer." in k for k in new)
    assert sorted(lps.load_state_dict(aps.state_dict(), strict=False).missing_keys) == sorted(new)
    x = structured_images(2, size)
    with torch.no_grad():
        assert torch.equal(lps(x), aps(x))
        assert _rel(lps(_roll(x, (3, 7))), lps(x)) <= 1e-4


def test_padding_becomes_circular_except_inside_tnt_patches():
    convmixer, _ = family_model("convmixer")
    antialias(convmixer, "aps", pad_mode="circular", stem=True)
    assert all(m.padding_mode == "circular" for m in convmixer.modules()
               if isinstance(m, torch.nn.Conv2d) and any(m._reversed_padding_repeated_twice))
    hiera, _ = family_model("hiera")
    assert antialias(hiera, "aps", pad_mode="circular", stem=True).patch_embed.proj.padding_mode == "circular"
    tnt, _ = family_model("tnt")
    assert antialias(tnt, "aps", pad_mode="circular", stem=True).pixel_embed.proj.padding_mode == "zeros"
    hiera, size = family_model("hiera")
    antialias(hiera, "aps")  # any pad_mode: the convs keep theirs, and anchoring alone is exact
    assert hiera.patch_embed.proj.padding_mode == "zeros"
    x = structured_images(2, size)
    with torch.no_grad():
        assert _rel(hiera(_roll(x, (3, 7))), hiera(x)) <= 1e-4


def test_blur_and_custom_layers_are_refused_in_one_line():
    for aa_layer in ("blur", "blurpc", functools.partial(BlurPool2d, filt_size=3), torch.nn.AvgPool2d):
        with pytest.raises(TimmAAError, match=r"pass aa_layer='aps'") as err:
            antialias(timm.create_model("test_vit"), aa_layer)
        assert "\n" not in str(err.value)
    model = timm.create_model("test_vit")
    before = repr(model)
    with pytest.raises(TimmAAError):
        antialias(model, stem=True)
    assert repr(model) == before  # refused before anything changed


def test_converting_twice_is_a_noop_and_the_hybrid_vit_stays_a_cnn():
    model = antialias(timm.create_model("test_vit"), "aps")
    before = repr(model)
    assert antialias(model, "lps") is model and repr(model) == before
    hybrid = timm.create_model("vit_tiny_r_s16_p8_224", img_size=64)  # ResNet stem + ViT: the CNN path, as before
    assert anchor_site(hybrid) is None
    antialias(hybrid, "aps", pad_mode="circular", stem=True)
    assert any(type(m).__name__ == "APSPool2d" for m in hybrid.modules())


def test_pre_patchified_inputs_and_masks_are_refused():
    naflex, _ = family_model("naflexvit")
    antialias(naflex, "aps")
    patches = {"patches": torch.randn(1, 16, 16 * 16 * 3), "patch_coord": torch.zeros(1, 16, 2, dtype=torch.long),
               "patch_valid": torch.ones(1, 16, dtype=torch.bool)}
    with pytest.raises(TimmAAError, match="pre-patchified") as err:
        naflex(patches)
    assert "\n" not in str(err.value)
    gemma, size = family_model("gemma4_vit")
    antialias(gemma, "aps")
    with pytest.raises(TimmAAError, match="pre-patchified"):
        gemma(torch.randn(1, 9, 16 * 16 * 3), patch_coord=torch.zeros(1, 9, 2, dtype=torch.long))
    hiera, size = family_model("hiera")
    antialias(hiera, "aps")
    with pytest.raises(TimmAAError, match="mask"):
        hiera.patch_embed(torch.randn(1, 3, size, size), mask=torch.ones(1, 1, 4, 4))


def test_any_size_with_dynamic_img_size_and_padding():
    """timm's dynamic_img_size / dynamic_img_pad: the anchor runs before the padding, so sizes that are not multiples
    of the patch are exact too; batch of 1; bf16."""
    model = antialias(timm.create_model("test_vit", dynamic_img_size=True, dynamic_img_pad=True), "aps").eval()
    for h, w in [(36, 44), (64, 48), (17, 80)]:
        x = structured_images(1, max(h, w))[..., :h, :w]
        with torch.no_grad():
            assert torch.equal(model(_roll(x, (3, 7))), model(x))
    half = antialias(timm.create_model("test_vit", img_size=64), "aps").eval().to(torch.bfloat16)
    x = structured_images(2, 64).to(torch.bfloat16)
    with torch.no_grad():
        assert torch.equal(half(_roll(x, (5, -11))), half(x))


def test_features_and_intermediates_come_out_in_the_anchored_frame():
    model = antialias(timm.create_model("test_vit", img_size=64), "aps").eval()
    x = structured_images(2, 64)
    with torch.no_grad():
        ref = model.forward_intermediates(x, indices=2)
        moved = model.forward_intermediates(_roll(x, (3, 7)), indices=2)
        assert torch.equal(ref[0], moved[0]) and all(torch.equal(a, b) for a, b in zip(ref[1], moved[1], strict=True))
        features = timm.create_model("swin_tiny_patch4_window7_224_aps", features_only=True, img_size=64,
                                     window_size=4, depths=(1, 1, 1, 1), embed_dim=16).eval()
        maps = features(x)
        assert all(torch.equal(a, b) for a, b in zip(maps, features(_roll(x, (3, 7))), strict=True))
    index = model.patch_embed.anchor.index(x)  # where each image was anchored: to un-roll the maps
    assert torch.equal(model.patch_embed.anchor.index(_roll(x, (3, 7))), (index + torch.tensor([3, 7])) % 64)


def test_shared_by_threads_and_deterministic():
    """One converted ViT, four threads at once: the serial outputs bit for bit (the forward keeps no state on the
    model); repeated calls and a fresh conversion give the same outputs."""
    model = antialias(timm.create_model("test_vit", img_size=64), "aps").eval()
    inputs = [structured_images(2, 64, seed=s) for s in range(4)]
    with torch.no_grad():
        serial = [model(x) for x in inputs]
        assert all(torch.equal(model(x), y) for x, y in zip(inputs, serial, strict=True))
    results: dict[tuple[int, int], torch.Tensor] = {}

    def work(i: int) -> None:
        with torch.no_grad():
            for rep in range(2):
                results[i, rep] = model(inputs[(i + rep) % 4])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(torch.equal(results[i, rep], serial[(i + rep) % 4]) for i in range(4) for rep in range(2))
    fresh = antialias(timm.create_model("test_vit", img_size=64), "aps").eval()
    fresh.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(fresh(inputs[0]), serial[0])


def test_input_gradients_move_with_the_shift():
    """The anchor is a choice of roll, a permutation: the gradient with respect to the input (saliency, adversarial
    attacks) of a shifted image is the shifted gradient, exactly."""
    model = antialias(timm.create_model("test_vit", img_size=64), "aps").eval()
    x = structured_images(2, 64)
    grads = []
    for shift in [(0, 0), (3, 7)]:
        xs = _roll(x, shift).requires_grad_(True)
        model(xs).square().sum().backward()
        grads.append(xs.grad)
    assert torch.equal(grads[1], _roll(grads[0], (3, 7))) and grads[0].abs().sum() > 0


def test_batch_members_are_anchored_independently():
    model = antialias(timm.create_model("test_vit", img_size=64), "aps").eval()
    x = structured_images(3, 64)
    with torch.no_grad():
        batch = model(torch.cat([x[:1], _roll(x[1:2], (9, 4)), x[2:]]))
        for i in range(3):
            torch.testing.assert_close(batch[i], model(x[i:i + 1])[0], rtol=1e-5, atol=1e-5)


def test_meta_device_and_dtype():
    for aa_layer in ("aps", "lps"):
        model = antialias(timm.create_model("test_vit", device="meta", dtype=torch.bfloat16), aa_layer)
        tensors = dict(model.named_parameters()) | dict(model.named_buffers())
        assert all(t.is_meta and t.dtype == torch.bfloat16 for t in tensors.values() if t.is_floating_point())


# --- every timm family ------------------------------------------------------------------------------------------------

_SIZE_WORDS = ("test", "atto", "femto", "pico", "nano", "tiny", "xxs", "xs", "mini", "small", "s")


def _smallest(module: str) -> str | None:
    """The model of timm's family ``module`` with the fewest parameters among its four smallest-sounding names."""
    import re

    def rank(name: str) -> tuple[int, int]:
        hits = [i for i, word in enumerate(_SIZE_WORDS) if re.search(rf"(^|_){word}", name)]
        return (min(hits) if hits else len(_SIZE_WORDS), len(name))

    best = None
    for name in sorted(timm.list_models(module=module), key=rank)[:4]:
        with torch.device("meta"):
            count = sum(p.numel() for p in timm.create_model(name).parameters())
        best = (name, count) if best is None or count < best[1] else best
    return best[0] if best else None


def _timm_families() -> list[str]:
    return [m for m in timm.list_modules() if any(timm.models.model_entrypoint(n).__module__.startswith("timm.models.")
                                                  for n in timm.list_models(module=m)[:1])]


@pytest.mark.slow
def test_every_timm_family_converts_or_is_refused_in_one_line():
    """Issue 29, acceptance 3: the smallest model of each of timm's families through antialias(model, 'aps',
    pad_mode='circular', stem=True), then a forward pass at its own input size: it converts (the 19 patchify families
    are then exactly invariant, tested above) or is refused with one TimmAAError line that names what to pass."""
    outcomes: dict[str, str] = {}
    for family in _timm_families():
        name = _smallest(family)
        model = timm.create_model(name).eval()
        try:
            antialias(model, "aps", pad_mode="circular", stem=True)
        except TimmAAError as err:
            assert "\n" not in str(err) and "pass " in str(err), f"{name}: {err}"
            outcomes[family] = f"refused: {err}"
            continue
        size = model.pretrained_cfg.get("input_size", (3, 224, 224))
        with torch.no_grad():
            out = model(torch.randn(1, *size))
        assert torch.isfinite(out).all(), name
        outcomes[family] = "converted"
    assert len(outcomes) >= 98
    assert all(outcomes[f] == "converted" for f in FAMILIES), {f: outcomes[f] for f in FAMILIES}
    print({f: o for f, o in outcomes.items() if o != "converted"})
