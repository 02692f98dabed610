"""Nothing a user owns is lost (issue 20): one ownership rule for every folder a script writes, a lock per folder,
clean-up of our own leftovers, files that follow the umask. Each test reproduces a reported case as a user meets
it (the scripts in-process, as ``python scripts/X.py`` runs them) and a second case of the same class."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import timm
import torch
from conftest import run_script

from timm_aa.errors import TimmAAError
from timm_aa.hub import write_export
from timm_aa.infra.fs import HOST_TAG
from timm_aa.infra.layout import LOCK, TEMP, marker_name
from timm_aa.infra.layout import TRAINER_STATE as STATE_FILE
from timm_aa.infra.ownership import claim, read_marker
from timm_aa.training.trackers import read_metrics

FAST = ["--model", "resnet18_aa", "--input-size", "32", "--crop-pct", "0.8", "--batch-size", "8", "--aug", "shift",
        "--no-progress"]


def _snapshot(folder):
    """Every file under ``folder`` with its bytes, but the lock (which names whoever held the folder last)."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            if name != LOCK:
                out[os.path.relpath(path, folder)] = open(path, "rb").read()
    return out


@pytest.fixture(scope="module")
def two_runs(digits_folder, tmp_path_factory):
    """Two finished training runs, A (2 epochs) and B (1 epoch): (A, B, their snapshots)."""
    from train import main

    root = tmp_path_factory.mktemp("runs")
    for name, epochs in (("A", "2"), ("B", "1")):
        assert main([*FAST, "--data", str(digits_folder), "--output", str(root / name), "--epochs", epochs]) == 0
    return root / "A", root / "B"


@pytest.mark.slow
def test_resume_of_another_runs_checkpoint_never_touches_the_output(two_runs, digits_folder, tmp_path, capsys):
    """Case 1: --output A --resume B/checkpoints/epoch-0000 overwrote A's checkpoints and export and mixed the two
    runs' metrics; now refused, A byte for byte as it was. Into a new folder it is a new run, started from B's."""
    a, b = two_runs
    before = _snapshot(a)
    code, _, err = run_script("train", [*FAST, "--data", str(digits_folder), "--output", str(a), "--resume",
                                     str(b / "checkpoints" / "epoch-0000"), "--epochs", "2"], capsys)
    assert code == 2 and "holds an earlier run's results" in err and "--overwrite" in err, err
    assert _snapshot(a) == before

    c = tmp_path / "C"
    code, _, err = run_script("train", [*FAST, "--data", str(digits_folder), "--output", str(c), "--resume",
                                     str(b / "checkpoints" / "epoch-0000"), "--epochs", "2"], capsys)
    assert code == 0 and "new run in" in err and "started from" in err, err
    run_c = read_marker(str(c), "train")[0].run
    assert run_c != read_marker(str(b), "train")[0].run
    records = read_metrics(str(c))
    assert records[0]["run"] == run_c and [r["epoch"] for r in records[1:]] == [1]  # C's own epoch only
    assert json.loads((c / "checkpoints" / "epoch-0001" / "trainer_state.json").read_text())["run"] == run_c


@pytest.mark.slow
def test_resume_latest_continues_only_the_folders_own_run(two_runs, digits_folder, tmp_path, capsys):
    """A checkpoint copied in from another run is not "latest": the folder's own run is continued, or nothing."""
    import shutil

    a, b = two_runs
    d = tmp_path / "D"
    shutil.copytree(b, d)
    shutil.copytree(a / "checkpoints" / "epoch-0001", d / "checkpoints" / "epoch-0007")  # A's, planted in D
    code, _, err = run_script("train", [*FAST, "--data", str(digits_folder), "--output", str(d), "--resume", "latest",
                                     "--epochs", "2"], capsys)
    assert code == 0 and "resumed from" in err and "epoch-0000" in err, err  # D's (B's) own checkpoint
    assert [r["epoch"] for r in read_metrics(str(d))[1:]] == [0, 1]  # one line per epoch, none twice


@pytest.mark.parametrize("planted", ["export/config.json", "metrics.jsonl"])
def test_a_fresh_run_never_replaces_what_it_did_not_write(digits_folder, tmp_path, capsys, planted):
    """Case 2: an output holding export/ or metrics.jsonl but no checkpoints/ had its export replaced without any
    flag; ownership was judged by file names. Now refused; with --overwrite the run writes beside the user's files
    and refuses to replace one of them."""
    out = tmp_path / "run"
    (out / planted).parent.mkdir(parents=True, exist_ok=True)
    (out / planted).write_text("mine")
    args = [*FAST, "--data", str(digits_folder), "--output", str(out), "--epochs", "1"]
    code, _, err = run_script("train", args, capsys)
    assert code == 2 and "did not write" in err and "--overwrite" in err, err
    code, _, err = run_script("train", [*args, "--overwrite"], capsys)
    assert code == 2 and planted.split("/")[-1] in err and "timm-aa did not write" in err, err
    assert (out / planted).read_text() == "mine"


@pytest.mark.slow
def test_overwrite_replaces_an_earlier_run_and_nothing_else(digits_folder, tmp_path, capsys):
    out = tmp_path / "run"
    args = [*FAST, "--data", str(digits_folder), "--output", str(out)]
    assert run_script("train", [*args, "--epochs", "2"], capsys)[0] == 0
    (out / "notes.txt").write_text("mine")
    first = read_marker(str(out), "train")[0].run
    code, _, err = run_script("train", [*args, "--epochs", "1", "--overwrite"], capsys)
    assert code == 0, err
    assert sorted(os.listdir(out / "checkpoints")) == ["epoch-0000"]  # the earlier run's epoch-0001 is gone
    assert (out / "notes.txt").read_text() == "mine"
    assert read_marker(str(out), "train")[0].run != first and len(read_metrics(str(out))) == 2


def test_a_second_process_on_the_same_output_is_refused(digits_folder, tmp_path, capsys):
    """Case 3: two train.py runs into one --output both exited 0, interleaving their files. The folder is locked;
    the second is refused naming the holder. A lock left by a killed process is taken over."""
    out = tmp_path / "run"
    with claim(str(out), "train"):  # this test process is the run in progress
        code, _, err = run_script("train", [*FAST, "--data", str(digits_folder), "--output", str(out)], capsys)
        assert code == 2 and f"is being written by process {os.getpid()}" in err, err
        with pytest.raises(TimmAAError, match="being written by"):
            claim(str(out), "evaluate")  # any tool: one writer per folder
    script = (f"from timm_aa.infra.ownership import claim; o = claim({str(tmp_path / 'k')!r}, 'evaluate'); "
              "print('held'); import time; time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with claim(str(tmp_path / "k"), "evaluate", overwrite=True) as owner:  # the dead holder's lock is taken over
        assert owner.folder == str(tmp_path / "k")


def test_a_planted_publish_marker_deletes_nothing(tmp_path, capsys):
    """Case 4: a marker that listed notes.txt got the user's notes.txt deleted without --overwrite."""
    export = write_export(timm.create_model("resnet18_aa", num_classes=2), str(tmp_path / "export"))
    out = tmp_path / "hub"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    mine = [4, hashlib.sha256(b"mine").hexdigest()]  # a forgery that even gets the size and hash right
    for marker in ({"files": ["notes.txt"], "complete": True},  # the old format, as the probe planted it
                   {"schema": "timm-aa/owner/1", "tool": "publish", "run": "0" * 32, "files": {"notes.txt": mine},
                    "pending": {}}):
        (out / marker_name("publish")).write_text(json.dumps(marker))
        code, _, err = run_script("publish", ["--model", export, "--output", str(out)], capsys)
        assert code == 2 and "notes.txt" in err, err
        assert (out / "notes.txt").read_text() == "mine"
    (out / "README.md").write_text("my readme")
    code, _, err = run_script("publish", ["--model", export, "--output", str(out), "--overwrite"], capsys)
    assert code == 2 and "README.md" in err and "did not write it" in err, err  # never replaced, even then
    assert (out / "README.md").read_text() == "my readme" and (out / "notes.txt").read_text() == "mine"


def test_evaluate_never_overwrites_an_earlier_result(digits_folder, tmp_path, capsys):
    """Case 5: consistency.json and the plots were overwritten without a word."""
    out = tmp_path / "eval"
    args = ["--model", "resnet18_aa", "--data", str(digits_folder / "val"), "--resize", "40", "--crop", "32",
            "--passes", "1", "--allow-random-weights", "--output", str(out), "--no-progress"]
    assert run_script("evaluate", args, capsys)[0] == 0
    first = _snapshot(out)
    code, _, err = run_script("evaluate", args, capsys)
    assert code == 2 and "earlier run's results" in err and "--overwrite" in err, err
    assert _snapshot(out) == first
    assert run_script("evaluate", [*args, "--overwrite"], capsys)[0] == 0
    assert json.loads((out / "consistency.json").read_text())["created"] >= json.loads(first["consistency.json"])[
        "created"]


def test_the_demo_never_overwrites_an_earlier_demo(tmp_path, capsys):
    out = tmp_path / "demo"
    with claim(str(out), "demo") as owner:  # an earlier demo's result
        owner.write_json("demo.json", {"runs": []})
    code, _, err = run_script("train", ["--output", str(out), "--epochs", "1"], capsys)
    assert code == 2 and "earlier run's results" in err, err
    assert json.loads((out / "demo.json").read_text()) == {"runs": []}


def test_outputs_that_overlap_the_data_are_refused(digits_folder, tmp_path, capsys):
    code, _, err = run_script("train", [*FAST, "--data", str(digits_folder), "--output", str(digits_folder / "run")],
                           capsys)
    assert code == 2 and "lies inside --data" in err, err
    code, _, err = run_script("evaluate", ["--model", "resnet18_aa", "--data", str(digits_folder), "--output",
                                        str(digits_folder), "--allow-random-weights"], capsys)
    assert code == 2 and "is --data" in err, err
    assert not (digits_folder / "run").exists()


def test_leftovers_of_a_killed_run_are_cleared_by_the_next(tmp_path, capsys):
    """Case 6: after a kill, .tmp-publish-* stayed and the rerun was refused; .tmp-export-* (44 MB) stayed forever.
    Temporaries carry this host and their process's pid; the next claim removes those whose process is gone."""
    export = write_export(timm.create_model("resnet18_aa", num_classes=2), str(tmp_path / "export"))
    out = tmp_path / "hub"
    assert run_script("publish", ["--model", export, "--output", str(out)], capsys)[0] == 0
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (out / f"{TEMP}{HOST_TAG}-{dead}-stage-0a1b2c3d").mkdir()  # a staging folder of a publish killed mid-way
    (out / f"{TEMP}{HOST_TAG}-{dead}-stage-0a1b2c3d" / "model.safetensors").write_bytes(b"x" * 1000)
    live = out / f"{TEMP}{HOST_TAG}-{os.getpid()}-file-0a1b2c3d"  # a live process's: kept
    live.write_text("in progress")
    code, _, err = run_script("publish", ["--model", export, "--output", str(out)], capsys)
    assert code == 0, err
    assert sorted(n for n in os.listdir(out) if n.startswith(TEMP)) == [live.name]


FAKE_CC = """#!/bin/sh
echo $$ > {pidfile}
sleep 30
"""


def test_a_killed_build_takes_its_compiler_down(tmp_path):
    """Case 6: killed during the kernel build, the compiler (in its own process group) outlived its parent."""
    pidfile = tmp_path / "cc.pid"
    cc = tmp_path / "cc"
    cc.write_text(FAKE_CC.format(pidfile=pidfile))
    cc.chmod(0o755)
    env = {**os.environ, "CC": str(cc), "TIMM_AA_CACHE": str(tmp_path / "cache")}
    parent = subprocess.Popen([sys.executable, "-c", "from timm_aa.layers._backends import native; native.kernel()"],
                              env=env)
    deadline = time.time() + 60
    while not pidfile.exists() and time.time() < deadline:
        time.sleep(0.05)
    compiler = int(pidfile.read_text())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 5
    while time.time() < deadline and os.path.exists(f"/proc/{compiler}") and \
            open(f"/proc/{compiler}/stat").read().split()[2] != "Z":
        time.sleep(0.05)
    gone = not os.path.exists(f"/proc/{compiler}") or open(f"/proc/{compiler}/stat").read().split()[2] == "Z"
    assert gone, "the compiler outlived the process that started it"


@pytest.mark.slow
def test_outputs_follow_the_umask(digits_folder, tmp_path):
    """Case 10: exports were 0700 / 0600 whatever the umask (mkdtemp); a training run's folders and files now follow
    it, as save_pretrained's do."""
    from train import main

    old = os.umask(0o027)
    try:
        assert main([*FAST, "--data", str(digits_folder), "--output", str(tmp_path / "run"), "--epochs", "1"]) == 0
    finally:
        os.umask(old)
    export, checkpoint = tmp_path / "run" / "export", tmp_path / "run" / "checkpoints" / "epoch-0000"
    for folder in (export, checkpoint):
        assert os.stat(folder).st_mode & 0o777 == 0o750, folder
    for path in (export / "model.safetensors", export / "config.json", checkpoint / STATE_FILE,
                 tmp_path / "run" / "metrics.jsonl", tmp_path / "run" / marker_name("train")):
        assert os.stat(path).st_mode & 0o777 == 0o640, path


def test_a_marker_whose_files_changed_is_not_trusted(tmp_path):
    with claim(str(tmp_path / "e"), "evaluate") as owner:
        owner.write_json("consistency.json", {"a": 1})
    assert read_marker(str(tmp_path / "e"), "evaluate")[0] is not None
    (tmp_path / "e" / "consistency.json").write_text('{"a": 2}')  # edited by hand: the user's now
    marker, why = read_marker(str(tmp_path / "e"), "evaluate")
    assert marker is None and why == "consistency.json changed since timm-aa wrote it"
    with pytest.raises(TimmAAError, match="did not write"):
        claim(str(tmp_path / "e"), "evaluate")
    assert set(os.listdir(tmp_path / "e")) == {LOCK, marker_name("evaluate"), "consistency.json"}


def test_a_refused_or_failed_first_claim_leaves_no_folder(tmp_path):
    with pytest.raises(TimmAAError, match="cannot be resumed"):
        claim(str(tmp_path / "new"), "train", resume=True)
    assert not (tmp_path / "new").exists()
    with pytest.raises(RuntimeError), claim(str(tmp_path / "new"), "evaluate"):
        raise RuntimeError("the work failed before writing anything")
    assert not (tmp_path / "new").exists()
    torch.manual_seed(0)
