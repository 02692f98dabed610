"""Issue 30, "finite or refused" for data: fewer than two classes and class folders without images are refused before
any work; a FIFO, a socket, a dangling link, a link loop and an image reached twice through links are skipped with a
count in one log line; nothing hangs (every test runs under a watchdog)."""

from __future__ import annotations

import contextlib
import faulthandler
import json
import logging
import os
import shutil
import socket
import threading

import pytest
import torch
from conftest import run_script

from timm_aa.data import open_image_folder, open_image_source
from timm_aa.errors import TimmAAError
from timm_aa.training import TrainConfig, train

TINY = dict(model="test_resnet", epochs=1, batch_size=4, input_size=32, crop_pct=0.8, aug="shift", warmup_epochs=0,
            max_train_batches=2, progress=False, log_epochs=False)
EVAL = ["--model", "test_resnet", "--allow-random-weights", "--resize", "40", "--crop", "32", "--protocol", "random",
        "--no-progress"]


@pytest.fixture(autouse=True)
def no_hang(tmp_path):
    """Fail, never hang, when a test opens a FIFO for reading (it would wait for a writer forever): after 60 s a
    watchdog thread opens every FIFO under ``tmp_path`` for writing and closes it, so the reader gets an empty file
    and goes on, and the test fails here. (An alarm signal cannot do this: it may reach another thread.) A test stuck
    elsewhere ends the run after 300 s with every thread's traceback."""
    done, fired = threading.Event(), threading.Event()

    def watch():
        if done.wait(60):
            return
        fired.set()
        while not done.wait(0.1):
            for fifo in [p for p in tmp_path.rglob("*") if p.is_fifo()]:
                with contextlib.suppress(OSError):  # no reader waiting: ENXIO
                    os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    watchdog = threading.Thread(target=watch, daemon=True)
    watchdog.start()
    faulthandler.dump_traceback_later(300, exit=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny steps on a shared 2-core machine
    yield
    torch.set_num_threads(threads)
    faulthandler.cancel_dump_traceback_later()
    done.set()
    watchdog.join()
    assert not fired.is_set(), "the test waited on a FIFO for more than 60 s"


def _plant(split):
    """In ``split`` (classes 0, 1, 2 of 12 or 5 digits each): a FIFO and a socket named like images, a dangling link,
    a link loop back to the split folder, and in class 2 a link to an image of class 1."""
    os.mkfifo(split / "0" / "fifo.png")
    with contextlib.closing(socket.socket(socket.AF_UNIX)) as sock:
        sock.bind(str(split / "0" / "sock.png"))
    (split / "0" / "dangling.png").symlink_to("nowhere.png")
    (split / "1" / "loop").symlink_to("..")
    borrowed = sorted((split / "1").glob("*.png"))[0]
    (split / "2" / "borrowed.png").symlink_to(os.path.join("..", "1", borrowed.name))
    return borrowed


@pytest.fixture
def planted(digits_folder, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(digits_folder, root)
    for split in ("train", "val"):
        _plant(root / split)
    return root


def test_links_fifos_sockets_and_loops_are_skipped_with_a_count_in_one_line(planted, caplog):
    with caplog.at_level(logging.WARNING, logger="timm_aa.data.sources"):
        source = open_image_folder(str(planted / "train"))
    assert [source.labels.count(c) for c in range(3)] == [12, 12, 12]  # each digit once, where it lies
    assert not [p for p in source.ids if os.path.basename(p) in ("fifo.png", "sock.png", "dangling.png",
                                                                  "borrowed.png") or "/loop/" in p]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1, lines
    assert "skipped 5 paths: " in lines[0] and "dangling or looping links: 1" in lines[0], lines[0]
    assert "not regular files (FIFO, device, socket): 2" in lines[0]
    assert "folders reached again through a link (a link loop): 1" in lines[0]
    assert "files reached twice (through a link or a hard link): 1 (e.g. '" in lines[0] and "borrowed.png" in lines[0]


def test_training_and_evaluation_run_on_the_planted_folder_and_count_each_image_once(planted, tmp_path, capsys):
    result = train(TrainConfig(**TINY, data=str(planted), output=str(tmp_path / "run")))
    assert result["final"]["val/num_unique_samples"] == 15
    code, _, err = run_script("evaluate", [*EVAL, "--data", str(planted / "val"), "--output", str(tmp_path / "eval")],
                              capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "eval" / "consistency.json").read_text())
    assert report["data"]["num_images"] == 15 and report["data"]["num_skipped"] == 0
    assert "skipped 5 paths" in err


def test_an_image_replaced_by_a_fifo_after_listing_is_unreadable_not_a_hang(digits_folder, tmp_path):
    shutil.copytree(digits_folder / "val", tmp_path / "val")
    source = open_image_folder(str(tmp_path / "val"))
    os.remove(source.ids[0])
    os.mkfifo(source.ids[0])
    with pytest.raises(OSError, match="not a regular file"):
        source.load(0)


@pytest.mark.parametrize("content, why", [
    ([], ""),
    (["fifo.png"], r" \(1 path in it skipped, see the log\)"),
])
def test_a_class_folder_without_an_image_is_refused_naming_it(digits_folder, tmp_path, capsys, content, why):
    root = tmp_path / "data"
    shutil.copytree(digits_folder, root)
    for split in ("train", "val"):
        (root / split / "3").mkdir()
        for name in content:
            os.mkfifo(root / split / "3" / name)
    message = f"class folder '{root / 'train' / '3'}' holds no image of its own{why}: add images, or remove it"
    with pytest.raises(TimmAAError, match=f"^{message}$"):
        train(TrainConfig(**TINY, data=str(root), output=str(tmp_path / "run")))
    assert not (tmp_path / "run").exists()  # before any work
    code, _, err = run_script("evaluate", [*EVAL, "--data", str(root / "val"), "--output", str(tmp_path / "eval")],
                              capsys)
    assert code == 2 and f"class folder '{root / 'val' / '3'}' holds no image of its own" in err, err
    assert not (tmp_path / "eval").exists()


def test_a_class_folder_that_links_to_another_is_refused(digits_folder, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(digits_folder, root)
    for split in ("train", "val"):
        (root / split / "3").symlink_to("0")
    with pytest.raises(TimmAAError, match=r"class folder '.*train/3' holds no image of its own \(12 paths in it"):
        train(TrainConfig(**TINY, data=str(root), output=str(tmp_path / "run")))


def test_a_training_set_of_one_class_is_refused_before_any_work(digits_folder, tmp_path):
    root = tmp_path / "data"
    for split in ("train", "val"):
        shutil.copytree(digits_folder / split / "0", root / split / "0")
    with pytest.raises(TimmAAError, match=r"^the training split '.*train' has images of 1 class \(0\): training "
                                          r"needs at least two$"):
        train(TrainConfig(**TINY, data=str(root), output=str(tmp_path / "run")))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("names, train_labels, message", [
    (["a"], [0, 0, 0, 0], r"the training split '.*' has images of 1 class \(a\): training needs at least two"),
    (["a", "b"], [1, 1, 1, 1], r"the training split '.*' has images of 1 class \(b\): training needs at least two"),
    (["a", "b"], [], r"cannot open the dataset '.*': one of its splits is empty"),
])
def test_a_hugging_face_dataset_of_one_class_or_an_empty_split_is_refused(digits_folder, tmp_path, names,
                                                                           train_labels, message):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)})
    image = str(sorted((digits_folder / "train" / "0").glob("*.png"))[0])
    splits = {"train": datasets.Dataset.from_dict({"image": [image] * len(train_labels), "label": train_labels},
                                                  features=features),
              "validation": datasets.Dataset.from_dict({"image": [image] * 2, "label": [0, 0]}, features=features)}
    datasets.DatasetDict(splits).save_to_disk(str(tmp_path / "hf"))
    with pytest.raises(TimmAAError, match=message):
        train(TrainConfig(**TINY, data=str(tmp_path / "hf"), output=str(tmp_path / "run")))
    assert not (tmp_path / "run").exists()
    if train_labels:  # evaluation may measure images of one class
        assert len(open_image_source(str(tmp_path / "hf"), "validation")) == 2
