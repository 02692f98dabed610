"""APS / LPS: exact circular-shift invariance, weight compatibility, training temperature, tools."""

from __future__ import annotations

import copy
import math

import pytest
import timm
import torch
from conftest import randomize_batchnorm
from hypothesis import given, settings
from hypothesis import strategies as st

import timm_aa
from timm_aa.errors import TimmAAError
from timm_aa.layers.anchor import LearnedPatchAnchor2d
from timm_aa.layers.polyphase import APSPool2d, LPSPool2d, polyphase_stack
from timm_aa.training import TrainConfig, build_model, train
from timm_aa.training.demo_data import digits_splits
from timm_aa.training.loop import GumbelSchedule
from timm_aa.training.trackers import read_metrics

SIZES = [(224, 224), (256, 192), (160, 320)]


def _random_model(name: str, **kwargs) -> torch.nn.Module:
    """Random weights with non-trivial BatchNorm (no zero-initialised residual branches), eval mode."""
    torch.manual_seed(0)
    model = timm.create_model(name, zero_init_last=False, **kwargs)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1, generator=gen)
                m.running_var.uniform_(0.5, 2.0, generator=gen)
                m.weight.uniform_(0.2, 0.6, generator=gen)
                m.bias.normal_(0, 0.1, generator=gen)
    return model.eval()


def test_polyphase_stack_is_strided_slicing():
    x = torch.randn(2, 3, 6, 8)
    stack = polyphase_stack(x, 2)
    for i in range(2):
        for j in range(2):
            assert torch.equal(stack[:, i * 2 + j], x[:, :, i::2, j::2])
    assert polyphase_stack(torch.randn(1, 1, 5, 7), 2).shape == (1, 4, 1, 3, 4)  # padded circularly


def test_aps_keeps_the_largest_component_and_lps_starts_as_aps():
    x = torch.randn(4, 8, 10, 10)
    stack = polyphase_stack(x, 2)
    best = stack.pow(2).sum((2, 3, 4)).argmax(1)
    out = APSPool2d(2)(x)
    assert torch.equal(out, stack[torch.arange(4), best])
    lps = LPSPool2d(8).eval()
    assert torch.equal(lps(x), out)
    lps.train()
    soft, weights = lps.forward_with_weights(x)
    assert soft.shape == out.shape and weights.sum(1).allclose(torch.ones(4))
    assert torch.equal(soft, torch.einsum("np,npchw->nchw", weights, stack))


def test_follower_must_run_after_its_main():
    main, follower = APSPool2d(2), APSPool2d(2)
    follower.follow(main)
    with pytest.raises(RuntimeError, match="ran before"):
        follower(torch.randn(1, 2, 4, 4))


TAU_FLOOR = 1e-3  # below it float16 overflows and float32 weights are one-hot with zero gradients (docs/layers.md)
HOSTILE_TAUS = [0.0, -0.0, -1.0, float("nan"), float("inf"), -float("inf"), 1e-300, 1e-38, 1e-4, 9.99e-4, TAU_FLOOR,
                1e300, True, False]


def test_lps_at_temperature_zero_is_refused_not_nan():
    """Issue 30, 20: ``LPSPool2d(tau=0)`` in training returned NaN; the annealing loop could set it too."""
    for make in (lambda: LPSPool2d(8, tau=0), lambda: setattr(LPSPool2d(8), "tau", 0.0)):
        with pytest.raises(TimmAAError, match=r"tau must be a finite number >= 0\.001, got 0") as err:
            make()
        assert "\n" not in str(err.value)
    model = torch.nn.Sequential(LPSPool2d(8))
    with pytest.raises(TimmAAError, match="tau"):
        GumbelSchedule(tau0=1.0, decay=0.5, min=0.0).apply(model, epoch=20)  # 1e-6: below the floor
    assert model[0].tau == 1.0


@settings(max_examples=60, deadline=None)
@given(tau=st.one_of(st.sampled_from(HOSTILE_TAUS), st.floats(), st.integers(-3, 3)))
def test_lps_temperature_is_a_finite_number_above_the_floor(tau):
    pool = LPSPool2d(4).train()
    if isinstance(tau, bool) or not math.isfinite(tau) or tau < TAU_FLOOR:
        for make in (lambda: LPSPool2d(4, tau=tau), lambda: setattr(pool, "tau", tau)):
            with pytest.raises(TimmAAError, match="finite number >= 0.001"):
                make()
        assert pool.tau == 1.0
        return
    pool.tau = tau
    assert pool.tau == tau == LPSPool2d(4, tau=tau).tau
    torch.nn.init.normal_(pool.scorer[2].weight, std=1.0)
    x = (10 * torch.randn(3, 4, 8, 8)).requires_grad_()
    out = pool(x)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in pool.parameters() if p.grad is not None)


def _max_shift_diff(model, size, shifts=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 3, *size, generator=gen)
    offsets = torch.randint(-32, 32, (shifts, 2), generator=gen).tolist()
    batch = torch.cat([torch.roll(x, (dy, dx), dims=(2, 3)) for dy, dx in offsets])
    with torch.no_grad():
        ref = model(x)
        out = torch.cat([model(chunk) for chunk in batch.split(16)])
    return (out - ref).abs().max().item()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18_aps", "resnet50_aps", "resnet18_lps", "resnet50_lps"])
def test_exact_circular_shift_invariance(name):
    model = _random_model(name)
    if name.endswith("_lps"):  # make the scorers non-trivial: LPS must be invariant by itself, not as APS
        for m in model.modules():
            if isinstance(m, LPSPool2d):
                torch.nn.init.normal_(m.scorer[2].weight, std=0.5)
    for size in SIZES:
        assert _max_shift_diff(model, size) <= 1e-5, size


@pytest.mark.parametrize("name", ["resnet18", "resnet18_aa"])
def test_blur_and_baseline_are_not_exactly_invariant(name):
    model = _random_model(name, **({"pad_mode": "circular"} if name.endswith("_aa") else {}))
    assert _max_shift_diff(model, (224, 224), shifts=16) > 5e-5  # 5x the tolerance the APS/LPS models meet


@pytest.mark.parametrize("name", ["resnetv2_18", "dpn48b"])
def test_blocks_whose_shortcut_subsamples_first_are_linked_the_other_way(name):
    """Pre-activation ResNets and DPN run the shortcut before the main branch: the shortcut's pool then chooses the
    phase and the main branch's follows (they crashed before: "a following polyphase pool ran before the pool it
    follows"); exact invariance holds."""
    model = randomize_batchnorm(timm.create_model(name, num_classes=10))
    timm_aa.antialias(model, "aps", pad_mode="circular", stem=True, filt_size=1)
    pools = [m for m in model.modules() if isinstance(m, APSPool2d)]
    assert any(p.following for p in pools)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
        assert ((model(torch.roll(x, (5, 9), (2, 3))) - ref).abs().max() / ref.abs().max()).item() <= 1e-5


def test_other_sizes_still_run():
    model = timm.create_model("resnet18_aps", num_classes=5).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 225, 201)).shape == (2, 5)


def test_aps_adds_no_parameters_and_lps_only_scorers():
    base = timm.create_model("resnet50")
    timm.create_model("resnet50_aps").load_state_dict(base.state_dict(), strict=True)
    lps = timm.create_model("resnet50_lps")
    extra = set(lps.state_dict()) - set(base.state_dict())
    assert extra and all(".scorer." in k for extra_key in [extra] for k in extra_key)
    assert set(base.state_dict()) <= set(lps.state_dict())


def test_converted_lps_equals_aps_before_fine_tuning(tmp_path):
    """Scorers start at zero, so LPS with baseline weights chooses (and predicts) exactly as APS."""
    base = randomize_batchnorm(timm.create_model("resnet18", num_classes=4))
    path = tmp_path / "base.safetensors"
    timm_aa.weights.save_weights(base, str(path))
    aps, fresh_aps = build_model(TrainConfig(model="resnet18_aps", init_from=f"resnet18:{path}"), 4)
    lps, fresh_lps = build_model(TrainConfig(model="resnet18_lps", init_from=f"resnet18:{path}"), 4)
    assert fresh_aps == [] and fresh_lps and all(".scorer." in k for k in fresh_lps)
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(lps.eval()(x), aps.eval()(x), rtol=0, atol=0)


def test_export_round_trip_keeps_the_method(tmp_path):
    model = timm.create_model("resnet18_lps", num_classes=3).eval()
    folder = timm_aa.weights.write_export(model, str(tmp_path / "export"))
    loaded = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    assert sum(isinstance(m, LPSPool2d) for m in loaded.modules()) == sum(
        isinstance(m, LPSPool2d) for m in model.modules())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=1e-6)


@pytest.mark.slow
def test_lps_training_anneals_tau_and_resume_restores_it(tmp_path):
    splits = digits_splits()
    keep = [i for i, label in enumerate(splits.train.labels) if label < 2][:24]
    splits.train.ids = [splits.train.ids[i] for i in keep]
    loader = splits.train._loader
    splits.train._loader = lambda i, keep=keep: loader(keep[i])
    splits.train.labels = [splits.train.labels[i] for i in keep]
    vkeep = list(range(10))
    splits.val.ids, splits.val.labels = splits.val.ids[:10], [min(v, 1) for v in splits.val.labels[:10]]
    splits.train.classes = splits.val.classes = ["0", "1"]
    del vkeep
    cfg = dict(model="resnet18_lps", output=str(tmp_path / "run"), batch_size=8, input_size=32, crop_pct=32 / 48,
               aug="center", progress=False, log_epochs=False)
    train(TrainConfig(**cfg, epochs=1), copy.deepcopy(splits))
    train(TrainConfig(**cfg, epochs=3, resume="latest", gumbel_tau0=5.0), copy.deepcopy(splits))
    taus = [r["gumbel_tau"] for r in read_metrics(cfg["output"]) if "gumbel_tau" in r]
    assert taus == pytest.approx([1.0, 0.8, 0.64])  # the resumed run kept tau0 = 1.0 from the checkpoint


@pytest.mark.slow
def test_evaluate_script_on_aps(tmp_path, capsys):
    import skimage.data
    from evaluate import main
    from PIL import Image

    for cls, names in {"a": ["coffee", "chelsea"], "b": ["rocket", "astronaut"]}.items():
        (tmp_path / "data" / cls).mkdir(parents=True)
        for n in names:
            Image.fromarray(getattr(skimage.data, n)()).save(tmp_path / "data" / cls / f"{n}.png")
    argv = ["--model", "resnet18_aps", "--model", "resnet18", "--data", str(tmp_path / "data"), "--protocol",
            "circular", "--resize", "64", "--crop", "64", "--passes", "4", "--no-progress", "--allow-random-weights"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    row = next(line.replace(" [random weights]", "").split() for line in lines if line.startswith("resnet18_aps"))
    assert row[2] == "100.00"  # model, top-1, circular, img/s


LEARNED_SAMPLERS = {
    "LPSPool2d": lambda channels, hidden, tau: LPSPool2d(channels, hidden=hidden, tau=tau),
    "LearnedPatchAnchor2d": lambda channels, hidden, tau: LearnedPatchAnchor2d(channels, 4, hidden=hidden, tau=tau),
}
HOSTILE_COUNTS = [0, -1, 2.5, "8", True, None, 2**63, float("nan")]


@settings(max_examples=60, deadline=None)
@given(layer=st.sampled_from(sorted(LEARNED_SAMPLERS)), which=st.sampled_from(["channels", "hidden", "tau"]),
       bad=st.sampled_from(HOSTILE_COUNTS + HOSTILE_TAUS[:6]))
def test_learned_samplers_refuse_bad_counts_and_temperatures_in_one_line(layer, which, bad):
    """Both learned samplers (LPS pools and the learned patch anchor) take positive int counts and a tau >= 0.001:
    anything else is one TimmAAError line naming the argument (hidden=0 built a scorer of zero units before; -1
    crashed in torch, 2**63 with a C++ traceback). ``hidden=None`` is LPSPool2d's default."""
    args = {**dict(channels=3, hidden=4, tau=1.0), which: bad}
    if which == "hidden" and bad is None and layer == "LPSPool2d":
        assert LEARNED_SAMPLERS[layer](**args).scorer[0].out_channels == 8
        return
    if which == "tau" and isinstance(bad, int | float) and not isinstance(bad, bool) and math.isfinite(bad) \
            and bad >= TAU_FLOOR:
        LEARNED_SAMPLERS[layer](**args)
        return
    with pytest.raises(TimmAAError) as err:
        LEARNED_SAMPLERS[layer](**args)
    assert "\n" not in str(err.value)
    assert ("tau" if which == "tau" else ("in_chans" if which == "channels" and layer != "LPSPool2d" else which)) \
        in str(err.value)
