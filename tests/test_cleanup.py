"""Every failure leaves nothing of ours behind, and nothing fails late that could have been refused first (issue 30,
items 3-6): checkpoints on another file system (a link to a larger disk), a full disk, a first run that fails, and
an output inside another tool's output. The tools run as users run them (``main(argv)`` in-process)."""

from __future__ import annotations

import os
import shutil

import pytest
from conftest import run_script, tmpfs

FAST = ["--input-size", "32", "--crop-pct", "0.8", "--batch-size", "8", "--aug", "shift",
        "--no-progress"]


@pytest.fixture
def small_disk(tmp_path):
    """A folder on a file system of its own (a 64 MB tmpfs; mounting needs root), removed after the test."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    with tmpfs(folder, "size=64m"):
        yield folder


def _ours_left(folder):
    return sorted(str(p) for p in folder.rglob(".timm-aa-tmp-*"))


def test_checkpoints_linked_onto_another_disk_are_written_there(digits_folder, tmp_path, small_disk, capsys):
    """Item 3: with checkpoints/ a link onto another file system, --resume latest trained an epoch, then failed with
    "Invalid cross-device link" and left its temporary folder: staging now happens on the checkpoints' own disk."""
    out = tmp_path / "run"
    argv = [*FAST, "--model", "test_resnet", "--data", str(digits_folder), "--output", str(out), "--keep-last", "5"]
    assert run_script("train", [*argv, "--epochs", "1"], capsys)[0] == 0
    shutil.move(out / "checkpoints", small_disk / "checkpoints")
    (out / "checkpoints").symlink_to(small_disk / "checkpoints")
    code, _, err = run_script("train", [*argv, "--epochs", "2", "--resume", "latest"], capsys)
    assert code == 0, err
    assert sorted(os.listdir(small_disk / "checkpoints")) == ["epoch-0000", "epoch-0001"]
    assert _ours_left(tmp_path) == [] and _ours_left(small_disk) == []
    # keeping fewer checkpoints than the run writes would delete through the link: refused before any work
    code, _, err = run_script("train", [*argv, "--epochs", "9", "--keep-last", "2", "--resume", "latest"], capsys)
    assert code == 2 and "never deletes through a link" in err and "--keep-last 9" in err, err


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_leaves_nothing(digits_folder, small_disk, capsys, monkeypatch):
    """Item 4: a disk that filled while a checkpoint was written gave a RuntimeError ('unexpected pos') traceback,
    and the partial temporary stayed, so the disk stayed full. A disk too small for one checkpoint is now refused
    before the first step; one that fills during the write (someone else's writes) is one line, and the partial
    checkpoint goes."""
    out = small_disk / "run"
    argv = [*FAST, "--model", "resnet50_aa", "--data", str(digits_folder), "--output", str(out), "--epochs", "1"]
    code, _, err = run_script("train", argv, capsys)
    assert code == 2 and "MB free" in err and "needs about" in err and "epoch 0:" not in err, err
    assert not out.exists()
    from timm_aa.training import checkpoints

    monkeypatch.setattr(checkpoints, "check_space", lambda *args: None)  # the check passed; then the disk filled
    code, _, err = run_script("train", argv, capsys)
    assert code == 2 and "no space left on the disk" in err, err
    assert _ours_left(small_disk) == []


@pytest.mark.parametrize("tool", ["train", "evaluate", "publish"])
def test_a_failed_first_run_leaves_no_folder_it_made(tool, digits_folder, tmp_path, capsys):
    """Item 5: a first run that failed left the folders it made (--output a/b/run left a/b)."""
    out = tmp_path / "a" / "b" / "run"
    script, argv = {  # each fails after its output was claimed: a model that cannot take the input, or no model
        "train": ("train", [*FAST, "--model", "vit_tiny_patch16_224", "--data", str(digits_folder)]),
        "evaluate": ("evaluate", ["--model", "resnet18x_nonexistent", "--allow-random-weights", "--data",
                                  str(digits_folder / "val")]),
        "publish": ("publish", ["--model", "resnet18x_nonexistent"]),
    }[tool]
    code, _, err = run_script(script, [*argv, "--output", str(out)], capsys)
    assert code == 2, err
    assert not (tmp_path / "a").exists()


def test_a_conversion_whose_every_file_fails_leaves_no_folder(tmp_path, capsys):
    """Item 5: convert_zhang.py whose every file failed left a folder holding only our lock and marker."""
    bad = tmp_path / "resnet18_lpf3-00000000.pth"
    bad.write_bytes(b"not a checkpoint")
    code, _, err = run_script("convert_zhang", [str(bad), "--output", str(tmp_path / "out" / "converted"),
                                                "--no-verify", "--no-progress"], capsys)
    assert code == 2 and "1 of 1 files were not converted" in err, err
    assert not (tmp_path / "out").exists()


def test_an_output_inside_another_tools_output_is_refused(digits_folder, tmp_path, capsys):
    """Item 6: evaluate --output RUN/export --overwrite wrote its lock and marker inside a training run, whose next
    --resume latest then called them files timm-aa did not write."""
    run = tmp_path / "run"
    argv = [*FAST, "--model", "resnet18_aa", "--data", str(digits_folder), "--output", str(run), "--epochs", "1",
            "--keep-last", "3"]
    assert run_script("train", argv, capsys)[0] == 0
    evaluate = ["--model", f"local-dir:{run / 'export'}", "--data", str(digits_folder / "val"), "--resize", "40",
                "--crop", "32", "--passes", "1", "--no-progress", "--overwrite"]
    for inside in (run / "export", run / "checkpoints" / "evals", run):
        before = sorted(p.relative_to(run).as_posix() for p in run.rglob("*"))
        code, _, err = run_script("evaluate", [*evaluate, "--output", str(inside)], capsys)
        assert code == 2 and ("lies inside" in err or "holds a run of timm-aa's train" in err), err
        assert sorted(p.relative_to(run).as_posix() for p in run.rglob("*")) == before
    code, _, err = run_script("train", [*argv, "--epochs", "2", "--resume", "latest"], capsys)
    assert code == 0, err
