"""Consistency protocols: library numbers equal naive per-image loops on real photos (scikit-image)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import skimage.data
import timm
import torch
from PIL import Image
from torch import nn

from timm_aa.consistency import (
    ConsistencySettings,
    ModelEntry,
    draw_offsets,
    draw_shifts,
    evaluate_consistency,
    plots,
)
from timm_aa.consistency.dataset import preprocess
from timm_aa.data import open_image_folder
from timm_aa.errors import TimmAAError
from timm_aa.hub import write_export

R, S = 64, 48
PHOTOS = {
    "animal": ["chelsea", "horse", "cat"],
    "object": ["coffee", "rocket", "astronaut", "camera", "coins", "moon", "brick", "grass", "gravel"],
}


def _photo(name: str) -> np.ndarray:
    return getattr(skimage.data, name)()


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    for cls, names in PHOTOS.items():
        (root / cls).mkdir()
        for name in names:
            img = _photo(name)
            if img.dtype == bool:
                img = (img * 255).astype(np.uint8)
            Image.fromarray(img).save(root / cls / f"{name}.png")
    Image.fromarray(_photo("astronaut")[:30, :40]).save(root / "object" / "small.png")  # smaller than R
    (root / "object" / "truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


def _subsampler(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2), nn.ReLU(),
                         nn.Flatten(), nn.LazyLinear(6))


def _invariant(seed: int = 1) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 6, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def _entries():
    sub, inv = _subsampler(), _invariant()
    sub(torch.zeros(1, 3, S, S))  # materialise the lazy layer
    return [ModelEntry("subsample", sub.eval()), ModelEntry("invariant", inv.eval(), interpolation="bicubic")]


def _naive(entry: ModelEntry, source, settings: ConsistencySettings) -> dict:
    """Image by image, crop by crop, with the documented offset streams."""
    readable = []
    for i in range(len(source)):
        try:
            readable.append(i)
            img = source.load(i)
        except OSError:
            readable.pop()
            continue
        readable[-1] = (i, img)
    mean, std = torch.tensor(entry.mean).view(3, 1, 1), torch.tensor(entry.std).view(3, 1, 1)

    def logits(t):
        with torch.no_grad():
            return entry.model(t[None])[0]

    items = [(i, (preprocess(img, R, entry.interpolation).float() / 255 - mean) / std) for i, img in readable]
    num_batches = -(-len(source) // settings.batch_size)
    rand, circ = [], []
    for p in range(settings.passes):
        count = num_batches if settings.offsets == "per-batch" else len(source)
        offsets, shifts = draw_offsets(settings.seed, p, count, R - S), draw_shifts(settings.seed, p, len(source), 32)
        for i, x in items:
            y1, x1, y2, x2 = offsets[i // settings.batch_size if settings.offsets == "per-batch" else i].tolist()
            a = logits(x[:, y1 : y1 + S, x1 : x1 + S]).argmax()
            b = logits(x[:, y2 : y2 + S, x2 : x2 + S]).argmax()
            rand.append(bool(a == b))
            c = (R - S) // 2
            center = x[:, c : c + S, c : c + S]
            dy1, dx1, dy2, dx2 = shifts[i].tolist()
            a = logits(torch.roll(center, (dy1, dx1), (1, 2))).argmax()
            b = logits(torch.roll(center, (dy2, dx2), (1, 2))).argmax()
            circ.append(bool(a == b))
    correct, probs, same = [], [], []
    for i, x in items:
        label = source.labels[i]
        c = (R - S) // 2
        correct.append(int(logits(x[:, c : c + S, c : c + S]).argmax()) == label)
        per_offset = [logits(x[:, o : o + S, o : o + S]) for o in range(R - S + 1)]
        probs.append([float(v.softmax(0)[label]) for v in per_offset])
        same.append(len({int(v.argmax()) for v in per_offset}) == 1)
    probs = np.array(probs)
    return dict(random=100 * np.mean(rand), circular=100 * np.mean(circ), accuracy=100 * np.mean(correct),
                diag_prob=probs.mean(0), diag_consistency=100 * np.mean(same),
                spread=(probs.max(1) - probs.min(1)).mean(), num=len(items))


@pytest.mark.parametrize("offsets,batch_size", [("per-batch", 4), ("per-image", 5)])
def test_protocols_equal_naive_loops(photo_folder, offsets, batch_size):
    source = open_image_folder(str(photo_folder))
    settings = ConsistencySettings(protocols=("random", "diagonal", "circular"), resize=R, crop=S, passes=3,
                                   seed=7, offsets=offsets, batch_size=batch_size)
    entries = _entries()
    report = evaluate_consistency(entries, source, settings, progress=False)
    assert report.data["num_images"] == len(source) - 1 == 13
    assert report.data["skipped"] == [str(photo_folder / "object" / "truncated.jpg")]
    for entry in entries:
        ref = _naive(entry, source, settings)
        rows = {r.protocol: r for r in report.rows(model=entry.name)}
        assert rows["random"].consistency == pytest.approx(ref["random"], abs=1e-9)
        assert rows["circular"].consistency == pytest.approx(ref["circular"], abs=1e-9)
        assert rows["random"].accuracy == pytest.approx(ref["accuracy"], abs=1e-9)
        diag = rows["diagonal"]
        np.testing.assert_allclose(diag.extra["true_class_prob"], ref["diag_prob"], atol=1e-5)
        assert diag.consistency == pytest.approx(ref["diag_consistency"], abs=1e-9)
        assert diag.extra["spread"] == pytest.approx(ref["spread"], abs=1e-5)
        assert diag.num_images == ref["num"]
    inv = {r.protocol: r.consistency for r in report.rows(model="invariant")}
    sub = {r.protocol: r.consistency for r in report.rows(model="subsample")}
    assert inv["circular"] == 100.0
    assert sub["circular"] < 100.0 and sub["random"] < 100.0


def test_same_offsets_for_every_model(photo_folder):
    source = open_image_folder(str(photo_folder))
    settings = ConsistencySettings(protocols=("random",), resize=R, crop=S, passes=2, batch_size=4)
    sub = _entries()[0]
    twin = ModelEntry("twin", sub.model)
    report = evaluate_consistency([sub, twin], source, settings, progress=False)
    a, b = report.rows(model="subsample")[0], report.rows(model="twin")[0]
    assert a.consistency == b.consistency


def test_unlabeled_folder(tmp_path):
    for name in ["coffee", "chelsea", "rocket"]:
        Image.fromarray(_photo(name)).save(tmp_path / f"{name}.jpg")
    source = open_image_folder(str(tmp_path))
    assert not source.labeled
    settings = ConsistencySettings(protocols=("random", "diagonal"), resize=R, crop=S, passes=1)
    report = evaluate_consistency(_entries(), source, settings, progress=False)
    row = report.rows(model="invariant", protocol="diagonal")[0]
    assert row.accuracy is None and row.extra["target"] == "center-crop prediction"
    assert row.extra["true_class_prob"][(R - S) // 2] > 0


def test_settings_are_validated():
    with pytest.raises(TimmAAError, match="'shifted'"):
        ConsistencySettings(protocols=("shifted",))
    with pytest.raises(TimmAAError, match="crop=300"):
        ConsistencySettings(crop=300)
    with pytest.raises(TimmAAError, match="'random'"):
        ConsistencySettings(offsets="random")


@pytest.fixture(scope="module")
def resnet18_folder(tmp_path_factory):
    """A resnet18 export folder: a model with weights of its own (not timm's random initialisation)."""
    torch.manual_seed(3)
    return write_export(timm.create_model("resnet18", num_classes=2), str(tmp_path_factory.mktemp("r18") / "export"))


@pytest.mark.slow
def test_cli_end_to_end(photo_folder, resnet18_folder, tmp_path, capsys, monkeypatch):
    from evaluate import main  # scripts/ is on sys.path via conftest

    legends = []  # each plot's legend, in the order they are written
    save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: (legends.append(fig.axes[0].get_legend_handles_labels()[1]),
                                                           save(fig, path)))
    out = tmp_path / "out"
    argv = ["--model", f"local-dir:{resnet18_folder}", "--label", "resnet18", "--model", "resnet18_aa", "--label",
            "resnet18_aa", "--allow-random-weights", "--data", str(photo_folder), "--protocol", "random",
            "--protocol", "diagonal", "--protocol", "circular", "--output", str(out), "--resize", "72",
            "--crop", "64", "--passes", "2", "--no-progress"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "resnet18 " in captured.out and "resnet18_aa [random weights]" in captured.out
    assert "truncated.jpg" in captured.err  # logged: skipped images
    report = json.loads((out / "consistency.json").read_text())
    assert report["schema"] == "timm-aa/consistency/1"
    assert {(r["model"], r["protocol"]) for r in report["results"]} == {
        (m, p) for m in ("resnet18", "resnet18_aa") for p in ("random", "diagonal", "circular")
    }
    assert {r["model"]: r["random_weights"] for r in report["results"]} == {"resnet18": False, "resnet18_aa": True}
    assert report["settings"]["resize"] == 72 and report["versions"]["timm"]
    for png in ("consistency.png", "diagonal.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert legends == [["resnet18", "resnet18_aa [random weights]"]] * 2


def test_random_weights_are_refused_unless_asked_for(photo_folder, tmp_path, capsys):
    """Issue 15, point 8: an untrained model scores 100% consistency with a constant prediction."""
    from evaluate import main

    argv = ["--model", "resnet18", "--model", "resnet18_aa", "--data", str(photo_folder), "--output",
            str(tmp_path / "out"), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'resnet18', 'resnet18_aa' would be measured with random weights" in err
    assert "--pretrained" in err and "--allow-random-weights" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "resnet18", "--data", "/nonexistent/dir"], "no data directory at '/nonexistent/dir'"),
        (["--model", "resnet18x_aa", "--data", "{photos}"], "did you mean 'resnet18_aa'"),
        (["--model", "resnet18", "--data", "{empty}"], "no images in"),
        (["--model", "resnet18", "--data", "{broken}"], "none of the 1 images"),
        (["--model", "resnet18", "--data", "{photos}", "--crop", "300"], "--crop 300: must be positive and at "
                                                                         "most --resize 64"),
        (["--model", "resnet18", "--data", "{photos}", "--passes", "0"], "--passes 0: must be an int in 1..1000"),
        (["--model", "vit_tiny_patch16_224", "--data", "{photos}"], "--crop 56: vit_tiny_patch16_224 cannot take "
                                                                      "56x56 images"),
        (["--model", "resnet18", "--data", "{photos}", "--output", "{unwritable}"], "is not writable"),
        (["--model", "resnet18", "--model", "resnet18_aa", "--data", "{photos}", "--label", "a"],
         "--label a: give one label per model (2)"),
    ],
)
def test_cli_bad_input(photo_folder, tmp_path, capsys, argv, message, unwritable):
    from evaluate import main

    (tmp_path / "empty").mkdir()
    (tmp_path / "broken" / "a").mkdir(parents=True)
    (tmp_path / "broken" / "a" / "x.png").write_bytes(b"nope")
    fill = dict(photos=str(photo_folder), empty=str(tmp_path / "empty"), broken=str(tmp_path / "broken"),
                unwritable=str(unwritable / "out"))
    base = ["--resize", "64", "--crop", "56", "--passes", "1", "--no-progress", "--allow-random-weights"]
    assert main(base + [a.format(**fill) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_hf_dataset_folder(tmp_path):
    datasets = pytest.importorskip("datasets")
    images = [Image.fromarray(_photo(n)) for n in ["coffee", "chelsea", "rocket", "astronaut"]]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])})
    ds = datasets.Dataset.from_dict({"image": images, "label": [0, 1, 0, 1]}, features=features)
    datasets.DatasetDict({"validation": ds}).save_to_disk(str(tmp_path / "hfds"))
    from timm_aa.data import open_image_source

    source = open_image_source(str(tmp_path / "hfds"))
    assert source.labeled and len(source) == 4 and source.classes == ["a", "b"]
    settings = ConsistencySettings(protocols=("random",), resize=R, crop=S, passes=1)
    report = evaluate_consistency(_entries(), source, settings, progress=False)
    assert report.data["num_images"] == 4 and report.rows()[0].accuracy is not None
