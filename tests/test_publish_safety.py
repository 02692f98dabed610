"""scripts/publish.py and timm_aa.hub against data loss, lying export folders, bad reports and no network
(issue 14, points 1, 4 and 9). The CLI runs in-process (``publish.main``): each refusal is checked to happen
before any model is loaded, to leave every file as it was, and to print one line."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest
import timm
import torch
from huggingface_hub import constants

from timm_aa.errors import TimmAAError
from timm_aa.hub import CardInfo, prepare_folder, push_folder, write_export


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    """A training run folder (checkpoints, metrics) with its export/ inside: resnet18_aa, filter size 4."""
    run = tmp_path_factory.mktemp("run")
    (run / "checkpoints" / "epoch-0000").mkdir(parents=True)
    (run / "checkpoints" / "epoch-0000" / "trainer_state.json").write_text('{"epoch": 0}')
    (run / "metrics.jsonl").write_text('{"step": 1}\n')
    torch.manual_seed(0)
    return write_export(timm.create_model("resnet18_aa", num_classes=3), str(run / "export"))


def _snapshot(folder):
    """Every file under ``folder`` with its bytes."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = f.read()
    return out


def _publish(argv, capsys):
    from publish import main  # scripts/ is on sys.path via conftest

    code = main(argv)
    out, err = capsys.readouterr()
    if code == 2:  # one error line (besides other libraries' progress bars), no traceback
        assert len([line for line in err.splitlines() if line.startswith("error: ")]) == 1, err
        assert "Traceback" not in err, err
    return code, out, err


@pytest.fixture
def user_folder(tmp_path):
    folder = tmp_path / "mine"
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("my notes")
    (folder / "sub" / "data.csv").write_text("1,2")
    return folder


def test_a_folder_with_user_files_is_refused_and_kept(export_dir, user_folder, capsys):
    before = _snapshot(user_folder)
    code, _, err = _publish(["--model", export_dir, "--output", str(user_folder)], capsys)
    assert code == 2
    assert "notes.txt, sub/data.csv" in err and "--overwrite" in err
    assert _snapshot(user_folder) == before and sorted(os.listdir(user_folder)) == ["notes.txt", "sub"]


def test_the_run_folder_the_source_and_the_working_directory_are_refused(export_dir, capsys, monkeypatch):
    run = os.path.dirname(export_dir)
    before = _snapshot(run)
    code, _, err = _publish(["--model", export_dir, "--output", run], capsys)
    assert code == 2 and "holds --model" in err and "which is being read" in err, err
    code, _, err = _publish(["--model", export_dir, "--output", export_dir, "--overwrite"], capsys)
    assert code == 2 and f"--output {export_dir} is --model" in err, err
    monkeypatch.chdir(run)
    code, _, err = _publish(["--model", export_dir, "--output", "."], capsys)
    assert code == 2 and "--output ." in err
    assert _snapshot(run) == before


def test_overwrite_writes_only_the_hub_files_and_a_second_publish_replaces_only_them(export_dir, user_folder,
                                                                                      capsys):
    code, out, err = _publish(["--model", export_dir, "--output", str(user_folder), "--overwrite"], capsys)
    assert code == 0, err
    assert (user_folder / "notes.txt").read_text() == "my notes" and (user_folder / "sub" / "data.csv").exists()
    marker = json.loads((user_folder / ".timm-aa-publish.json").read_text())
    assert sorted(marker["files"]) == ["README.md", "config.json", "model.safetensors"] and marker["pending"] == {}
    (user_folder / "later.txt").write_text("added after publishing")
    code, _, err = _publish(["--model", export_dir, "--output", str(user_folder)], capsys)  # ours now: no flag
    assert code == 0, err
    assert sorted(os.listdir(user_folder)) == [".timm-aa-publish.json", ".timm-aa.lock", "README.md", "config.json",
                                               "later.txt", "model.safetensors", "notes.txt", "sub"]


def test_an_unwritable_output_is_refused_before_any_work(export_dir, unwritable, capsys):
    code, _, err = _publish(["--model", export_dir, "--output", str(unwritable / "hub")], capsys)
    assert code == 2 and f"--output {unwritable / 'hub'} is not writable" in err


@pytest.mark.parametrize("content, message", [
    (b"\x00\x9f garbage", "is not JSON"),
    (b'{"schema": "something/else"}', "is not a timm-aa consistency report"),
    (b'{"schema": "timm-aa/consistency/1", "results": [{"protocol": "random"}]}', "model must be a string"),
    (json.dumps({"schema": "timm-aa/consistency/1", "results": [
        {"model": "resnet18_aa", "weights": "random", "protocol": "random", "consistency": 100.0, "accuracy": 0.0,
         "num_images": 10, "resize": 256, "crop": 224, "passes": 5}]}).encode(), "measured with random weights"),
])
def test_a_bad_eval_json_names_the_file(export_dir, tmp_path, capsys, content, message):
    path = tmp_path / "report.json"
    path.write_bytes(content)
    code, _, err = _publish(["--model", export_dir, "--output", str(tmp_path / "hub"), "--eval-json", str(path)],
                            capsys)
    assert code == 2 and str(path) in err and message in err, err
    assert not (tmp_path / "hub").exists()


@pytest.mark.parametrize("lie, says", [
    (lambda c: {k: v for k, v in c.items() if k != "model_args"} | {"architecture": "resnet18"},
     "config.json describes 'resnet18', but model.safetensors was written for 'resnet18_aa'"),
    (lambda c: c | {"model_args": {**c["model_args"], "filt_size": 3}},
     "config.json describes 'resnet18_aa' with filt_size 3, but model.safetensors was written for 'resnet18_aa' "
     "with filt_size 4"),
])
def test_an_export_whose_config_lies_is_refused(export_dir, tmp_path, capsys, lie, says):
    """Issue 14, point 4: the round trip would pass, rebuilding the same wrong model from the same config."""
    folder = tmp_path / "export"
    folder.mkdir()
    for name in ("model.safetensors", "config.json"):
        (folder / name).write_bytes(open(os.path.join(export_dir, name), "rb").read())
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(lie(config)))
    with pytest.raises(TimmAAError, match="contradicts itself") as err:
        prepare_folder(str(folder), str(tmp_path / "hub"), CardInfo("me/x"))
    assert says in str(err.value)
    code, _, cli_err = _publish(["--model", str(folder), "--output", str(tmp_path / "hub2")], capsys)
    assert code == 2 and says in cli_err
    assert not (tmp_path / "hub").exists() and not (tmp_path / "hub2").exists()


@pytest.fixture(scope="module")
def prepared(export_dir, tmp_path_factory):
    return prepare_folder(export_dir, str(tmp_path_factory.mktemp("pub") / "hub"), CardInfo("me/x")).folder


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_network_with_a_token_is_one_line(export_dir, tmp_path, capsys, monkeypatch):
    url = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setattr(constants, "ENDPOINT", url)
    code, out, err = _publish(["--model", export_dir, "--output", str(tmp_path / "hub"), "--repo-id", "me/x",
                               "--token", "hf_SECRETtoken123456"], capsys)
    assert code == 2, err
    assert f"cannot reach the Hugging Face Hub at {url}" in err and "hf_SECRET" not in out + err
    hub = [n for n in os.listdir(tmp_path / "hub") if not n.startswith(".")]
    assert "wrote" in out and sorted(hub) == ["README.md", "config.json", "model.safetensors"]


def test_a_silent_hub_fails_within_the_timeout_without_retrying(prepared, monkeypatch):
    """A server that accepts connections and never answers (packets dropped on the way back, say): one bounded
    try instead of a minute of the Hub client's retries."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        monkeypatch.setattr(constants, "HF_HUB_ETAG_TIMEOUT", 1)
        start = time.monotonic()
        with pytest.raises(TimmAAError, match="cannot reach the Hugging Face Hub"):
            push_folder(prepared, "me/x", token="hf_x")
        assert time.monotonic() - start < 5


def test_offline_mode_says_so(prepared, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(TimmAAError, match="HF_HUB_OFFLINE is set"):
        push_folder(prepared, "me/x", token="hf_x")


def test_only_a_complete_publish_folder_is_pushed(export_dir, tmp_path):
    with pytest.raises(TimmAAError, match="not a complete publish folder"):
        push_folder(export_dir, "me/x", token="hf_x")  # an export folder, not a publish folder
