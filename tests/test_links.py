"""Nothing is written, truncated or deleted through a link (issue 30, items 1-2 and acceptance 3): a symbolic link
planted at every path a tool creates, locks or removes (the lock, the marker, every temporary name, checkpoints/,
export/, the files a tool writes, the output folder itself) leaves what it points to untouched, for train,
evaluate, publish, convert_zhang and the demo. The tools run as users run them (``main(argv)`` in-process)."""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import uuid

import antialiased_cnns
import pytest
import timm
import torch
from conftest import run_script

from timm_aa.hub import write_export

FAST = ["--model", "resnet18_aa", "--input-size", "32", "--crop-pct", "0.8", "--batch-size", "8", "--aug", "shift",
        "--no-progress", "--epochs", "1"]
PRECIOUS = b"the user's own file: never truncated, rewritten or deleted\n"


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    return write_export(timm.create_model("resnet18_aa", num_classes=2), str(tmp_path_factory.mktemp("x") / "export"))


@pytest.fixture(scope="module")
def his_file(tmp_path_factory):
    """One of Zhang's files, named as he named them (the hash prefix of its bytes)."""
    folder = tmp_path_factory.mktemp("his")
    buf = io.BytesIO()
    torch.save({"state_dict": antialiased_cnns.resnet18(filter_size=3).state_dict()}, buf)
    path = folder / f"resnet18_lpf3-{hashlib.sha256(buf.getvalue()).hexdigest()[:8]}.pth"
    path.write_bytes(buf.getvalue())
    return str(path)


def _tool(name, digits_folder, export, his_file, out):
    """(script, argv) running the tool ``name`` into ``out``."""
    return {
        "train": ("train", [*FAST, "--data", str(digits_folder), "--output", str(out)]),
        "evaluate": ("evaluate", ["--model", "resnet18", "--allow-random-weights", "--data", str(digits_folder / "val"),
                                  "--resize", "40", "--crop", "32", "--passes", "1", "--no-progress", "--output",
                                  str(out)]),
        "publish": ("publish", ["--model", export, "--output", str(out)]),
        "convert": ("convert_zhang", [his_file, "--output", str(out), "--no-verify", "--no-progress"]),
        "demo": ("train", ["--model", "resnet18", "--seed", "0", "--epochs", "1", "--input-size", "32",
                           "--batch-size", "128", "--no-progress", "--output", str(out)]),
    }[name]


#: what each tool creates, locks or removes in its output folder, by the kind of thing a link there would point to
PLANTED = {
    "train": ["", ".timm-aa.lock", ".timm-aa-train.json", "metrics.jsonl", "export", "checkpoints"],
    "evaluate": ["", ".timm-aa.lock", ".timm-aa-evaluate.json", "consistency.json", "consistency.png"],
    "publish": ["", ".timm-aa.lock", ".timm-aa-publish.json", "README.md", "config.json", "model.safetensors"],
    "convert": ["", ".timm-aa.lock", ".timm-aa-convert.json", "resnet18_aa.zhang_lpf3_in1k"],
    "demo": ["", ".timm-aa.lock", ".timm-aa-demo.json", "demo.json", "digits-val"],
}
FOLDERS = ("", "export", "checkpoints", "digits-val", "resnet18_aa.zhang_lpf3_in1k")


def _target(tmp_path, folder: bool):
    """Something of the user's for a link to point to: a file, or a folder holding one."""
    if folder:
        target = tmp_path / "users-folder"
        target.mkdir()
        (target / "notes.txt").write_bytes(PRECIOUS)
    else:
        target = tmp_path / "users-file.txt"
        target.write_bytes(PRECIOUS)
    return target


def _state(path):
    """What a link's target holds, to compare before and after."""
    if path.is_dir():
        return sorted((p.relative_to(path).as_posix(), p.read_bytes(), p.stat().st_mtime_ns)
                      for p in path.rglob("*") if p.is_file())
    return path.read_bytes(), path.stat().st_mtime_ns


def _check_outcome(code, err, link, target, before):
    assert code in (0, 2), err
    if code == 2:
        assert err.count("error: ") == 1 and "Traceback" not in err, err
    assert _state(target) == before, f"the target of {link} changed"
    assert os.path.islink(link), f"{link} (the user's link) was removed"


@pytest.mark.parametrize("tool, name", [(t, n) for t, names in PLANTED.items() for n in names if n or t == "train"]
                         + [(t, "") for t in PLANTED if t != "train"],
                         ids=lambda v: v or "output")
def test_a_link_where_a_tool_writes_leaves_its_target_untouched(tool, name, digits_folder, export, his_file, tmp_path,
                                                                capsys):
    """Item 1: a .timm-aa.lock linked to a user's file got truncated and rewritten; the class: every name a tool
    creates, locks or removes, and the output folder itself."""
    out = tmp_path / "out"
    target = _target(tmp_path, folder=name in FOLDERS)
    before = _state(target)
    if name:
        out.mkdir()
        (out / name).symlink_to(target)
        link = out / name
    else:
        out.symlink_to(target)
        link = out
    script, argv = _tool(tool, digits_folder, export, his_file, out)
    code, _, err = run_script(script, argv, capsys)
    _check_outcome(code, err, link, target, before)


def _every_temp_collides(monkeypatch, folders):
    """Plant a link at the first name every temporary (of every label) would take in ``folders``; the names of this
    process's temporaries are made predictable for their first try."""
    from timm_aa.infra import fs

    fixed = uuid.UUID("deadbeef" * 4)
    tries = itertools.count()
    monkeypatch.setattr(fs.uuid, "uuid4", lambda: fixed if next(tries) % 2 == 0 else uuid.UUID(int=next(tries)))
    labels = ["", "marker", "file", "stage", "old"]
    suffixes = ["", ".json", ".jsonl", ".png", ".md", ".safetensors"]
    links = []
    for folder, label, suffix in itertools.product(folders, labels, suffixes):
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{fs.TEMP}{fs.HOST_TAG}-{os.getpid()}-{label}{'-' if label else ''}deadbeef{suffix}"
        (folder / name).symlink_to(folder.parent / "users-file.txt")
        links.append(folder / name)
    return links


@pytest.mark.slow
@pytest.mark.parametrize("tool", list(PLANTED))
def test_links_at_every_temporary_name_leave_their_target_untouched(tool, digits_folder, export, his_file, tmp_path,
                                                                    capsys, monkeypatch):
    """Acceptance 3, temporaries: a link at the name a temporary file or folder takes is never opened; another name
    is taken, the run completes, and the link and its target stay as they were."""
    out = tmp_path / "out"
    target = _target(tmp_path, folder=False)
    before = _state(target)
    folders = [out] + ([out / "checkpoints"] if tool == "train" else [])
    links = _every_temp_collides(monkeypatch, folders)
    script, argv = _tool(tool, digits_folder, export, his_file, out)
    argv = [*argv, "--overwrite"]  # the planted links are files we did not write: write beside them
    code, _, err = run_script(script, argv, capsys)
    assert code == 0, err
    for link in links:
        _check_outcome(0, err, link, target, before)


@pytest.mark.slow
def test_overwrite_never_deletes_a_users_folder_in_checkpoints_nor_through_a_link(digits_folder, tmp_path, capsys):
    """Item 2: --overwrite deleted an empty user folder inside checkpoints/, and deleted through a checkpoints/ that
    linked to a user's folder."""
    out = tmp_path / "run"
    assert run_script("train", [*FAST, "--data", str(digits_folder), "--output", str(out)], capsys)[0] == 0
    (out / "checkpoints" / "mine").mkdir()  # the user's empty folder
    code, _, err = run_script("train", [*FAST, "--data", str(digits_folder), "--output", str(out), "--overwrite"],
                              capsys)
    assert code == 0 and (out / "checkpoints" / "mine").is_dir(), err
    # the user moves the checkpoints onto a folder of theirs and links it: an overwrite must not delete there
    theirs = tmp_path / "theirs"
    (out / "checkpoints").rename(theirs)
    (theirs / "notes.txt").write_bytes(PRECIOUS)
    (out / "checkpoints").symlink_to(theirs)
    before = _state(theirs)
    code, _, err = run_script("train", [*FAST, "--data", str(digits_folder), "--output", str(out), "--overwrite"],
                              capsys)
    _check_outcome(code, err, out / "checkpoints", theirs, before)
    assert code == 2 and "link" in err, err


def test_a_user_file_in_a_checkpoint_to_be_written_is_refused_before_training(digits_folder, tmp_path, capsys):
    """Item 2: a user's file in an earlier checkpoint folder was found only after an epoch of training, and the
    refused checkpoint's temporary folder (129 MB for a ResNet-50) stayed."""
    out = tmp_path / "run"
    assert run_script("train", [*FAST, "--data", str(digits_folder), "--output", str(out)], capsys)[0] == 0
    (out / "checkpoints" / "epoch-0000" / "notes.txt").write_bytes(PRECIOUS)
    code, _, err = run_script("train", [*FAST, "--data", str(digits_folder), "--output", str(out), "--overwrite"],
                              capsys)
    assert code == 2 and "notes.txt" in err and "epoch 0:" not in err, err  # refused before the first epoch
    assert (out / "checkpoints" / "epoch-0000" / "notes.txt").read_bytes() == PRECIOUS
    assert not [p for p in out.rglob(".timm-aa-tmp-*")], "a temporary stayed"
