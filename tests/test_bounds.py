"""Every value that reaches timm-aa is in its documented range or refused in one line (issue 30, items 7-10, 12-13
and acceptance 2): hostile values for every flag of every script, and for every key of every file we read, are
either accepted or refused with one ``error:`` line (exit 2 in scripts, TimmAAError in the library), with nothing
written. The documented ranges are timm_aa/infra/bounds.py's table."""

from __future__ import annotations

import argparse
import json
import os
import time

import pytest
import timm
import torch
from conftest import run_script
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from timm_aa.errors import TimmAAError
from timm_aa.hub import write_export
from timm_aa.infra.bounds import BOUNDS

HOSTILE_TEXT = ["nan", "NaN", "inf", "-inf", "Infinity", "0", "-0", "-1", "1", "2", "7", "0.5", "1e-9", "1e309",
                str(2**31), str(2**63), str(2**64), "", " ", "x" * 5000, "a\nb", "\t", "../../etc", "$(rm -rf ~)",
                "<script>alert(1)</script>", "hf-hub:a/b@../../x", "cuda", "cuda:7", "gpu"]
FLAG_VALUES = st.one_of(st.sampled_from(HOSTILE_TEXT), st.integers(-2**70, 2**70).map(str),
                        st.floats(allow_nan=True, allow_infinity=True).map(repr),
                        st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=40))
SCRIPTS = ("train", "evaluate", "publish", "quickstart", "convert_zhang")
FAST_SETTINGS = settings(max_examples=30, deadline=None, derandomize=True,
                         suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _base(script, tmp):
    """Arguments that make ``script`` stop at a fixed point after checking its values: a missing data folder, model
    or checkpoint. ``tmp/out`` is its output folder."""
    out, missing = str(tmp / "out"), str(tmp / "missing")
    return {
        "train": ["--data", missing, "--output", out],
        "evaluate": ["--model", "resnet18", "--allow-random-weights", "--data", missing, "--output", out],
        "publish": ["--model", missing, "--output", out],
        "quickstart": ["--model", "no_such_model_xyz"],
        "convert_zhang": [missing, "--output", out],
    }[script]


def _flags(script):
    """Every option of ``script`` that takes a value: (flag, argparse action)."""
    parser = __import__(script).build_parser()
    return [(max(a.option_strings, key=len), a) for a in parser._actions
            if a.option_strings and a.nargs != 0 and a.dest not in ("help", "token")]


def _out_of_bounds(action: argparse.Action, text: str) -> bool:
    """Whether the table refuses ``text`` as the value of ``action`` (argparse's own refusals count)."""
    try:
        value = action.type(text) if action.type else text
    except (TypeError, ValueError):
        return True
    if action.choices is not None:
        return value not in action.choices
    name = {"models": "model", "labels": "eval_model"}.get(action.dest, action.dest)
    return name in BOUNDS and BOUNDS[name](value) is not None


def _run(script, argv, capsys):
    try:
        return run_script(script, argv, capsys)
    except SystemExit as exit_:  # argparse's refusal: one line too (timm_aa.infra.cli.parse)
        out, err = capsys.readouterr()
        return exit_.code, out, err


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_flag_takes_a_value_in_range_or_refuses_it_in_one_line(script, tmp_path, capsys):
    """Acceptance 2: hypothesis over every flag of every script; nothing is written either way."""
    for flag, action in _flags(script):
        _flag_property(script, flag, action, tmp_path, capsys)()


def _flag_property(script, flag, action, tmp_path, capsys):
    @FAST_SETTINGS
    @given(text=FLAG_VALUES)
    def check(text):
        argv = [*_base(script, tmp_path), flag, text]
        code, _, err = _run(script, argv, capsys)
        lines = [line for line in err.splitlines() if line.startswith("error: ")]
        assert code == 2 and len(lines) == 1 and "Traceback" not in err, (flag, text, err)
        if _out_of_bounds(action, text):
            assert flag in lines[0] or f"argument {flag}" in lines[0], (flag, text, err)
        assert not (tmp_path / "out").exists(), (flag, text)

    return check


@pytest.mark.parametrize("argv, message", [
    (["--lr", "inf"], "--lr inf: must be a finite number in [0, 10]"),
    (["--lr", "nan"], "--lr nan: must be a finite number"),
    (["--min-lr", "nan"], "--min-lr nan: must be a finite number"),
    (["--weight-decay", "nan"], "--weight-decay nan: must be a finite number"),
    (["--gumbel-tau0", "0", "--gumbel-min", "0"], "--gumbel-tau0 0.0: must be a finite number in [0.001, 100]"),
    (["--seed", "-1"], "--seed -1: must be an int in 0..4294967295"),
    (["--seed", "99999999999"], "--seed 99999999999: must be an int in 0..4294967295"),
    (["--crop-pct", "0.000001"], "--crop-pct 1e-06: must be a finite number in [0.05, 1]"),
    (["--workers", "100000"], "--workers 100000: must be an int in 0.."),
    (["--batch-size", "65536", "--input-size", "4096"], "one batch of 65536 images of 4096x4096 needs"),
])
def test_training_values_are_refused_before_any_work(digits_folder, tmp_path, capsys, argv, message):
    """Items 7-9: --lr inf / --weight-decay nan / --gumbel-tau0 0 trained NaN models that evaluate called 100%
    consistent; --lr nan blamed --opt adamw, --min-lr nan --sched cosine; --seed -1 and --seed 99999999999 were
    tracebacks; --crop-pct 0.000001 allocated hundreds of GB."""
    code, _, err = run_script("train", ["--data", str(digits_folder), "--output", str(tmp_path / "run"), *argv],
                              capsys)
    assert code == 2 and message in err, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv, message", [
    (["--adversarial-max-shift", "100000"], "--adversarial-max-shift 100000: must be an int in 1..32"),
    (["--protocol", "adversarial", "--fractional-steps", "30"], "adversarial shifts per image"),
    (["--fractional-steps", "100000"], "--fractional-steps 100000: must be an int in 1..32"),
    (["--protocol", "adversarial-crop", "--resize", "4000", "--crop", "32"], "adversarial crops per image"),
    (["--batch-size", "65536", "--resize", "4096"], "one batch of 65536 images of 4096x4096 needs"),
    (["--device", "cuda:3" if torch.cuda.is_available() else "cuda"], "--device cuda"),
    (["--device", "gpu"], "--device gpu is not a torch device name"),
])
def test_evaluation_values_are_refused_before_any_work(digits_folder, tmp_path, capsys, argv, message):
    """Items 9-10: --adversarial-max-shift 100000 and --fractional-steps 100000 tried to allocate terabytes;
    --device cuda on a machine without a GPU was a 34-line traceback."""
    start = time.perf_counter()
    code, _, err = run_script("evaluate", ["--model", "resnet18", "--allow-random-weights", "--data",
                                           str(digits_folder / "val"), "--output", str(tmp_path / "out"), *argv],
                              capsys)
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists() and time.perf_counter() - start < 10


def test_the_quick_start_names_the_value_it_refuses(capsys):
    """Item 12: quickstart.py --model resnet18 --filt-size 0 answered 'the quick start needs a CNN'."""
    code, _, err = run_script("quickstart", ["--model", "resnet18", "--filt-size", "0"], capsys)
    assert code == 2 and "--filt-size 0: must be an int in 1..7" in err and "CNN" not in err, err
    code, _, err = run_script("quickstart", ["--model", "resnet18", "--seed", "-5"], capsys)
    assert code == 2 and "--seed -5: must be an int in 0..4294967295" in err, err


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    return write_export(timm.create_model("resnet18_aa", num_classes=2), str(tmp_path_factory.mktemp("e") / "export"))


def _nested(depth):
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["pretrained_cfg"].update(input_size=[3, 100000, 100000]),
     "pretrained_cfg.input_size item 1 must be an int in 1..4096"),
    ("deep", "is not JSON timm-aa reads (nested deeper than Python parses)"),
    (lambda c: c.setdefault("model_args", {}).update(global_pool="evil"), "model_args.global_pool must be one of"),
    (lambda c: c.setdefault("model_args", {}).update(evil_arg=1), "model_args.evil_arg is not an argument timm-aa"),
    (lambda c: c.update(num_classes=2**63), "num_classes must be an int in 0..1000000"),
], ids=["input_size", "nesting", "global_pool", "unknown_arg", "num_classes"])
def test_a_config_we_did_not_write_is_checked_before_timm_sees_it(export, digits_folder, tmp_path, capsys, edit,
                                                                   message):
    """Item 13: an export's config.json with input_size [3, 100000, 100000], 100 000 levels of nesting, or
    model_args.global_pool 'evil' ended in allocation, RecursionError and AssertionError tracebacks."""
    folder = tmp_path / "export"
    folder.mkdir()
    os.symlink(os.path.join(export, "model.safetensors"), folder / "model.safetensors")
    config = json.load(open(os.path.join(export, "config.json")))
    if edit == "deep":
        (folder / "config.json").write_text(_nested(100000))
    else:
        edit(config)
        (folder / "config.json").write_text(json.dumps(config))
    for script, argv in (("evaluate", ["--model", f"local-dir:{folder}", "--data", str(digits_folder), "--output",
                                       str(tmp_path / "out")]),
                         ("publish", ["--model", str(folder), "--output", str(tmp_path / "out")])):
        code, _, err = run_script(script, argv, capsys)
        assert code == 2 and message in err, (script, err)
        assert not (tmp_path / "out").exists()


JSON_VALUES = st.one_of(
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 0, -1, 2**63, -2**63, 1e308, "", "x" * 10000, [], {},
                     None, True, False, [1, 2, 3], {"a": {"b": {}}}, "../../x", "<script>"]),
    st.integers(), st.floats(), st.text(max_size=20),
    st.recursive(st.integers() | st.text(max_size=5), lambda c: st.lists(c, max_size=3) | st.dictionaries(
        st.text(max_size=5), c, max_size=3), max_leaves=8),
)


def _set_dotted(data, field, value):
    keys = field.split(".")
    for key in keys[:-1]:
        data = data.setdefault(key, {}) if isinstance(data.get(key), dict) else data.setdefault(key, {})
        if not isinstance(data, dict):
            return
    data[keys[-1]] = value


def _check_reader(read, fix_in_message=True):
    """``read()`` returns, or raises one TimmAAError line; nothing else escapes."""
    try:
        return read()
    except TimmAAError as err:
        assert "\n" not in str(err), str(err)
        return None


def test_every_key_of_every_file_we_read_is_accepted_or_refused_in_one_line(export, tmp_path):
    """Acceptance 2, files: hostile values for every key of an export's config.json, a checkpoint's
    trainer_state.json, a consistency report (--eval-json), an export's metrics.json and an ownership marker."""
    from timm_aa.consistency.report import ROW_RULES, ResultRow
    from timm_aa.hub.card import metrics_from_export
    from timm_aa.infra.marker import read_marker
    from timm_aa.training.checkpoints import FORMAT, TRAINER_STATE_RULES, read_state
    from timm_aa.weights.config import CONFIG_RULES, MODEL_ARGS_RULES, read_config

    good_config = json.load(open(os.path.join(export, "config.json")))
    folder = tmp_path / "export"
    folder.mkdir()
    os.symlink(os.path.join(export, "model.safetensors"), folder / "model.safetensors")
    state = {"format": FORMAT, "run": "0" * 32, "epoch": 1, "global_step": 10, "metrics": {}, "scheduler": {},
             "gumbel": {"tau0": 1.0, "decay": 0.8, "min": 0.1, "tau": 0.8}, "metrics_lines": 2}
    row = {"model": "m", "architecture": "resnet18_aa", "weights": "w", "protocol": "random", "consistency": 90.0,
           "accuracy": 80.0, "num_images": 10, "resize": 256, "crop": 224, "passes": 5, "seed": 0}
    kinds = [
        ("config.json", good_config, [*CONFIG_RULES, *(f"model_args.{k}" for k in MODEL_ARGS_RULES)],
         lambda: read_config(str(folder)), folder / "config.json"),
        ("trainer_state.json", state, list(TRAINER_STATE_RULES), lambda: read_state(str(tmp_path)),
         tmp_path / "trainer_state.json"),
        ("a report row", row, list(ROW_RULES), None, None),  # read by ResultRow.from_dict
        ("metrics.json", {"val/top1": 50.0, "val/consistency": 60.0}, ["val/top1", "val/consistency"],
         lambda: metrics_from_export(str(tmp_path / "metrics.json")), tmp_path / "metrics.json"),
        (".timm-aa-evaluate.json", {"schema": "timm-aa/owner/1", "tool": "evaluate", "run": "0" * 32, "files": {},
                                    "pending": {}}, ["schema", "tool", "run", "files", "pending"],
         lambda: read_marker(str(tmp_path), "evaluate"), tmp_path / ".timm-aa-evaluate.json"),
    ]
    for _, good, fields, read, path in kinds:
        for field in fields:
            _key_property(good, field, read or (lambda data: ResultRow.from_dict(data, "report.json")), path)()


def _key_property(good, field, read, path):
    @settings(max_examples=15, deadline=None, derandomize=True)
    @given(value=JSON_VALUES)
    def check(value):
        data = json.loads(json.dumps(good))
        _set_dotted(data, field, value)
        if path is None:
            _check_reader(lambda: read(data))
        else:
            path.write_text(json.dumps(data, allow_nan=True))
            _check_reader(read)

    return check


def test_a_fifo_a_device_or_a_link_where_a_file_is_read_never_blocks(tmp_path):
    """Item 11's neighbour for our own files: a FIFO (whose open blocks until a writer comes), a device or a link
    where a config, a trainer state, a report or a marker is read."""
    import threading

    from timm_aa.consistency.report import load_report
    from timm_aa.infra.marker import read_marker
    from timm_aa.training.checkpoints import read_state
    from timm_aa.weights.config import read_config

    os.mkfifo(tmp_path / "config.json")
    os.mkfifo(tmp_path / "trainer_state.json")
    os.mkfifo(tmp_path / "report.json")
    os.symlink("/dev/zero", tmp_path / ".timm-aa-evaluate.json")
    results = []

    def read_all():
        for read in (lambda: read_config(str(tmp_path)), lambda: read_state(str(tmp_path)),
                     lambda: load_report(str(tmp_path / "report.json"))):
            try:
                read()
                results.append("read")
            except TimmAAError as err:
                results.append(str(err))
        results.append(read_marker(str(tmp_path), "evaluate"))

    worker = threading.Thread(target=read_all, daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "a read blocked"
    assert all("a FIFO, not a file timm-aa reads" in r for r in results[:3]), results
    assert results[3][0] is None and "symbolic link" in results[3][1], results
