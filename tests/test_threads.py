"""Layers safe to share (issue 30, 19; acceptance 4): one model shared by threads, replicas and copies gives the
serial outputs bit for bit; a forward keeps no per-call state on the module."""

from __future__ import annotations

import copy
import pickle
import sys
import threading
from unittest import mock

import pytest
import timm
import torch
from conftest import randomize_batchnorm
from torch.nn.parallel import replicate as replicate_module

import timm_aa
from timm_aa.layers import APSPool2d, LPSPool2d, PolyphasePool2d
from timm_aa.layers.polyphase import aps_weights, polyphase_stack

THREADS, CALLS = 4, 4


@pytest.fixture(autouse=True)
def _one_intra_op_thread():
    """Each Python thread's ops on one core: with torch's intra-op pool on top of 4 Python threads, a busy 2-core
    machine runs these tests 20 times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model(name: str) -> torch.nn.Module:
    """Random weights, random BatchNorm statistics, LPS scorers far from zero (they choose, not the APS prior)."""
    torch.manual_seed(0)
    if name.startswith("antialias:"):  # a non-ResNet family through antialias()
        _, family, aa_layer = name.split(":")
        model = timm_aa.antialias(timm.create_model(family, num_classes=10), aa_layer, pad_mode="circular")
    else:
        model = timm.create_model(name, num_classes=10, **({} if name.endswith("_afc") else {"zero_init_last": False}))
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, LPSPool2d):
                m.scorer[2].weight.normal_(0.0, 2.0, generator=gen)
    return randomize_batchnorm(model)


def _inputs(seed: int) -> list[torch.Tensor]:
    """THREADS x CALLS inputs of different batch sizes (1 to 4) and sizes (32 to 48 px)."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(1 + i % 4, 3, 32 + 16 * (i % 2), 32 + 8 * (i % 3), generator=gen)
            for i in range(THREADS * CALLS)]


def _in_threads(models: list[torch.nn.Module], inputs: list[torch.Tensor]) -> list[torch.Tensor | str]:
    """Run ``inputs[t::THREADS]`` in thread t through ``models[t % len(models)]``, all threads at once, with the
    interpreter switching threads every 10 us (so that one thread's pools run between another's); a call that raised
    gives its error message."""
    outputs: list[torch.Tensor | str] = ["not run"] * len(inputs)
    start = threading.Barrier(THREADS)

    def work(t: int) -> None:
        start.wait()
        for i in range(t, len(inputs), THREADS):
            try:
                with torch.no_grad():
                    outputs[i] = models[t % len(models)](inputs[i])
            except Exception as e:  # returned: a thread's exception would be lost
                outputs[i] = f"{type(e).__name__}: {e}"

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    return outputs


def _serial(model: torch.nn.Module, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    with torch.no_grad():
        return [model(x) for x in inputs]


def _wrong(outputs: list[torch.Tensor | str], want: list[torch.Tensor]) -> list[tuple[int, str]]:
    """The calls whose output is not the serial one, bit for bit: (index, the error or the largest difference)."""
    pairs = enumerate(zip(outputs, want, strict=True))
    return [(i, got if isinstance(got, str) else f"max diff {(got - ref).abs().max().item():.2e}")
            for i, (got, ref) in pairs if isinstance(got, str) or not torch.equal(got, ref)]


def _serial_and_choices(model: torch.nn.Module, inputs: list[torch.Tensor]) -> tuple[list[torch.Tensor], dict]:
    """The serial outputs and, for each polyphase pool, the phases its own rule picks over all samples (for LPS
    pools also whether the scorer overrules the APS prior, under ``NAME:lps``)."""
    picks: dict[str, set] = {}

    def hook(name):
        def record(pool, args):
            stack = polyphase_stack(args[0], pool.stride)
            chosen = pool.choose(stack).argmax(1)
            picks.setdefault(name, set()).update(chosen.tolist())
            if isinstance(pool, LPSPool2d):
                picks.setdefault(f"{name}:lps", set()).update((chosen != aps_weights(stack).argmax(1)).tolist())
        return record

    handles = [m.register_forward_pre_hook(hook(n)) for n, m in model.named_modules()
               if isinstance(m, PolyphasePool2d)]
    try:
        return _serial(model, inputs), picks
    finally:
        for handle in handles:
            handle.remove()


FAMILIES = ["resnet18_aa", "resnet18_aps", "resnet18_lps", "resnet18_afc", "antialias:regnetx_002:aps",
            "antialias:regnetx_002:lps"]


@pytest.mark.parametrize("name", FAMILIES)
def test_four_threads_sharing_one_model_give_the_serial_outputs(name):
    model = _model(name)
    inputs = _inputs(0)
    want, picks = _serial_and_choices(model, inputs)
    if "aps" in name or "lps" in name:  # the test proves something only if the phase choices differ by input
        assert picks and all(len(chosen) >= 2 for chosen in picks.values()), picks
    assert _wrong(_in_threads([model], inputs), want) == []


@pytest.mark.parametrize("name", ["resnet18_aps", "resnet18_lps"])
def test_replicas_and_copies_choose_for_themselves(name):
    """DataParallel's replicas (torch's own ``replicate``, on CPU), deepcopies and pickled copies: each alone, and all
    at once with the original in threads, give the original's serial outputs (a replica's shortcut followed the
    original's main pool)."""
    model = _model(name)
    inputs = _inputs(1)
    want = _serial(model, inputs)
    cpu = [torch.device("cpu")] * 2
    with mock.patch("torch.nn.parallel.replicate._broadcast_coalesced_reshape",
                    lambda tensors, devices, detach=False: [[t.detach() if detach else t for t in tensors]
                                                            for _ in devices]), \
            mock.patch("torch.nn.parallel.replicate._get_device_index", lambda device, optional=False: -1):
        replicas = replicate_module(model, cpu, detach=True)
    copies = [*replicas, copy.deepcopy(model), pickle.loads(pickle.dumps(model))]
    for other in copies:
        assert _wrong(_serial(other, inputs[:4]), want[:4]) == []
    assert _wrong(_in_threads([model, *copies[:THREADS - 1]], inputs), want) == []


def test_a_follower_that_runs_before_its_main_pool_is_one_error():
    """The choice lives from the main pool's forward to its followers', in one call: a follower that runs first is
    refused, also after an earlier call left a choice of the same batch size behind; two followers both take it."""
    main, follower, second = APSPool2d(2), APSPool2d(2), APSPool2d(2)
    follower.follow(main)
    x = torch.randn(2, 4, 8, 8)
    with pytest.raises(RuntimeError, match="ran before") as err:
        follower(x)
    assert "\n" not in str(err.value)
    main(x)
    follower(x)
    with pytest.raises(RuntimeError, match="ran before"):
        follower(x)
    main(x)
    with pytest.raises(RuntimeError, match="ran before"):
        follower(x[:1])
    second.follow(main)
    want = main(x)
    assert torch.equal(follower(x), want) and torch.equal(second(x), want)
    with pytest.raises(RuntimeError, match="ran before"):
        second(x)
    # a timm block that computes its shortcut first (pre-activation ResNetV2): antialias() reads the order from the
    # block's graph and links the main branch's pool to the shortcut's, so every call runs (tests/test_polyphase.py)
    model = timm_aa.antialias(timm.create_model("resnetv2_18", num_classes=4), "aps").eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_a_forward_leaves_nothing_on_the_module(mode):
    """No per-call state on ``self``: a model's ``__dict__`` entries (all modules) are the same objects before and
    after forwards of different batches, with and without gradients; no link holds a call's weights after it."""
    model = _model("resnet18_lps").train(mode == "train")
    before = {name: dict(vars(m)) for name, m in model.named_modules()}
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    with torch.no_grad():
        model(torch.randn(3, 3, 40, 32))
    after = {name: dict(vars(m)) for name, m in model.named_modules()}
    changed = [(name, key) for name, attrs in after.items() for key in attrs.keys() | before[name].keys()
               if attrs.get(key) is not before[name].get(key)]
    assert changed == []
    links = {m.link for m in model.modules() if isinstance(m, PolyphasePool2d)}
    assert any(link.followers for link in links)
    assert [link for link in links if getattr(link._local, "pending", None) is not None] == []
