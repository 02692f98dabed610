"""Text and names we did not write, on their way to a model card or the Hub client (issue 30, items 14-16): free
text reaches the card escaped (no HTML, link, table cell, heading or front-matter line of its own), a value that
must have a form (license, URL, tag, repo id, revision, organisation) is refused in one line before any work, and
an explicit flag wins over the source folder's value. Cards are rendered from hostile inputs and parsed back."""

from __future__ import annotations

import json
import os
import re

import pytest
import timm
import torch
import yaml
from conftest import run_script
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from timm_aa.errors import TimmAAError
from timm_aa.hub import CardInfo, push_folder, render_card, write_export
from timm_aa.hub.card_text import card_text

HOSTILE = ["<script>alert(1)</script>", '<img src=x onerror="alert(1)">', "[click](javascript:alert(1))",
           "JaVaScRiPt\t:alert(1)", "a | b | c", "<!-- hidden -->", "x\n---\nlicense: mit\n---", "---",
           "\n| evil | row |\n|---|---|\n", "\n# Heading", "![i](http://x/y.png)", "`code` **b**", "\u202eevil\u2028x",
           "1. one\n- two\n> three", "&lt;script&gt;", "<a href='javascript:x'>y</a>", "\r\n===\n", "\x00\x1b[31m"]
EVIL = " ".join(HOSTILE)


def _split(card: str) -> tuple[dict, str]:
    """The front matter (parsed) and the body of a card."""
    assert card.startswith("---\n"), card[:40]
    end = card.index("\n---\n", 4)
    return yaml.safe_load(card[4:end]), card[end + 5:]


def _skeleton(body: str) -> list[str]:
    """Each line's Markdown block kind: what hostile text could change."""
    kinds = [(r"#{1,6}\s", "heading"), (r"\|", "table"), (r"[-+*]\s", "item"), (r"\d+[.)]\s", "numbered"),
             (r"```", "fence"), (r"(-{3,}|={3,}|\*{3,}|_{3,})\s*$", "rule"), (r">", "quote"), (r"<", "html"),
             (r"\s{4}", "indented"), (r"\s*$", "blank")]
    return [next((k for pattern, k in kinds if re.match(pattern, line)), "text") for line in body.splitlines()]


def _assert_inert(card: str, benign: str) -> dict:
    """``card`` has ``benign``'s block structure and table shape, and no raw HTML or script link; returns its
    front matter."""
    front, body = _split(card)
    low = body.lower()
    for raw in ("<script", "<img", "<a ", "<!--", "javascript:", "\u202e", "\x00"):
        assert raw not in low, (raw, body)
    assert _skeleton(body) == _skeleton(_split(benign)[1])
    for line in (x for x in body.splitlines() if x.startswith("|")):
        assert len(re.findall(r"(?<!\\)\|", line)) == 5, line  # 4 columns: no cell added or split
    return front


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return timm.create_model("resnet18_aa", num_classes=3)


METRICS = [dict(name="top-1 accuracy", type="accuracy", value=91.5, split="validation", source="timm-aa training")]


def test_free_text_renders_inert(model):
    info = CardInfo("me/x", summary=EVIL, provenance=EVIL, dataset_name=EVIL,
                    metrics=[dict(METRICS[0], name=EVIL, source=EVIL, split=EVIL)])
    card = str(render_card(model, info))
    front = _assert_inert(card, str(render_card(model, CardInfo("me/x", metrics=METRICS))))
    assert card_text(EVIL) in card  # the text is there, escaped: "&lt;script&gt;alert\(1\)..."
    entry = front["model-index"][0]["results"][0]
    assert entry["dataset"]["name"] == card_text(EVIL) and entry["metrics"][0]["name"] == card_text(EVIL)
    assert front["license"] == "apache-2.0" and front["datasets"] == ["custom"]
    assert front["model-index"][0]["name"] == "x"


TEXT = st.lists(st.sampled_from(HOSTILE) | st.text(max_size=8), max_size=6).map("".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXT)
def test_any_text_renders_inert(model, text):
    """Property: whatever the summary, provenance, dataset name and metric fields hold, the card keeps the
    template's structure and its front matter parses to the escaped values."""
    info = CardInfo("me/x", summary=text, provenance=text, dataset_name=text or None,
                    metrics=[dict(METRICS[0], name=text, source=text)])
    front = _assert_inert(str(render_card(model, info)), str(render_card(model, CardInfo("me/x", metrics=METRICS))))
    assert front["model-index"][0]["results"][0]["metrics"][0]["name"] == card_text(text)


@pytest.mark.parametrize("field", ["license", "dataset", "base_model", "repo_id"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXT)
def test_a_value_with_a_form_is_refused_or_kept_exactly(model, field, text):
    """Property: a license, dataset, base model or repo id is either refused (one line naming the field) or lands
    in the front matter exactly as given."""
    info = CardInfo(**{"repo_id": "me/x", field: text})
    try:
        card = str(render_card(model, info))
    except TimmAAError as err:
        assert len(str(err).splitlines()) == 1 and str(err).startswith(f"{field}=")
        return
    front, body = _split(card)
    if field == "repo_id":
        assert f"\n# {text.split('/')[-1]}\n" in body and f"'hf-hub:{text}'" in body
    else:
        assert {"license": front.get("license"), "dataset": (front.get("datasets") or [None])[0],
                "base_model": front.get("base_model")}[field] == text
    assert re.fullmatch(r"[A-Za-z0-9._+/-]+", text)


@pytest.fixture(scope="module")
def hostile_export(tmp_path_factory):
    """An export whose config.json carries hostile free text (description, notes) and a licence and origin URL."""
    torch.manual_seed(0)
    folder = write_export(timm.create_model("resnet18_aa", num_classes=3), str(tmp_path_factory.mktemp("h") / "e"),
                          provenance={"description": EVIL, "notes": EVIL, "license": "cc-by-nc-sa-4.0",
                                      "origin_url": "https://github.com/adobe/antialiased-cnns"})
    return folder


def _with_cfg(folder, tmp_path, **cfg):
    """A copy of the export ``folder`` with ``cfg`` in its config.json's pretrained_cfg."""
    out = tmp_path / "edited"
    out.mkdir()
    for name in ("model.safetensors", "config.json"):
        (out / name).write_bytes(open(os.path.join(folder, name), "rb").read())
    config = json.loads((out / "config.json").read_text())
    config["pretrained_cfg"].update(cfg)
    (out / "config.json").write_text(json.dumps(config))
    return str(out)


@pytest.fixture(scope="module")
def published(hostile_export, tmp_path_factory):
    """The hostile export published with --license mit and a hostile --provenance (one publish, several checks;
    the timm and transformers round trip, 10 s here and tested in test_hub.py, is skipped)."""
    from publish import main

    import timm_aa.hub.publish as publish

    out = tmp_path_factory.mktemp("pub") / "hub"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(publish, "verify_folder", lambda *a, **k: {"timm": 0.0})
        assert main(["--model", hostile_export, "--output", str(out), "--license", "mit", "--provenance", EVIL,
                     "--repo-id", "me/resnet18_aa.pets"]) == 0
    return out


def test_a_source_folders_description_reaches_the_card_escaped(published, model):
    """Item 14: pretrained_cfg.description holding <script>, <img onerror>, javascript: links and --- lines
    reached the card body raw."""
    card = (published / "README.md").read_text()
    _assert_inert(card, str(render_card(model, CardInfo("me/resnet18_aa.pets", summary="s", provenance="p"))))
    assert card_text(EVIL) in card


def test_an_explicit_flag_wins_over_the_source_folders_value(published):
    """--license mit over the folder's cc-by-nc-sa-4.0 (the folder's won), everywhere: front matter, body and the
    published config.json; --provenance over the line made from the folder's origin_url."""
    front, body = _split((published / "README.md").read_text())
    assert front["license"] == "mit" and "**License of the weights:** mit" in body
    assert json.loads((published / "config.json").read_text())["pretrained_cfg"]["license"] == "mit"
    assert f"**Weights:** {card_text(EVIL)}" in body and "original release" not in body


@pytest.mark.parametrize("cfg, field", [
    ({"license": '<img src=x onerror="alert(1)">'}, "pretrained_cfg.license"),
    ({"license": "mit\n---\nevil: true"}, "pretrained_cfg.license"),
    ({"origin_url": "javascript:alert(1)"}, "pretrained_cfg.origin_url"),
    ({"origin_url": 'https://x.org/"><script>'}, "pretrained_cfg.origin_url"),
    ({"tag": "x\n---"}, "pretrained_cfg.tag"),
    ({"interpolation": "<script>"}, "pretrained_cfg.interpolation"),
])
def test_a_source_folders_value_out_of_form_is_refused(hostile_export, tmp_path, capsys, cfg, field):
    """A licence, URL or tag is not free text: out of form, the publish is refused in one line naming the file and
    the field, and writes nothing."""
    folder = _with_cfg(hostile_export, tmp_path, **cfg)
    code, _, err = run_script("publish", ["--model", folder, "--output", str(tmp_path / "hub")], capsys)
    assert code == 2 and field in err and "config.json" in err, err
    assert not (tmp_path / "hub").exists()


@pytest.mark.parametrize("flag, value", [
    ("--repo-id", "../../evil"), ("--repo-id", "org/na me<script>"), ("--repo-id", "a/b/c"),
    ("--license", "<script>alert(1)</script>"), ("--license", "MIT License"), ("--dataset", "[x](javascript:y)"),
    ("--base-model", "../../etc"), ("--revision", "../../../../FILE"), ("--revision", "/abs"),
    ("--revision", "a\\b"), ("--revision", "main\x00"),
])
def test_publish_flags_out_of_form_are_refused_before_any_work(hostile_export, tmp_path, capsys, monkeypatch, flag,
                                                               value):
    """Item 15: --repo-id ../../evil (or "org/na me<script>") was accepted and written into the card."""
    import timm_aa.hub.publish as publish

    monkeypatch.setattr(publish, "load_source", lambda *a: pytest.fail("the model was loaded"))
    code, _, err = run_script("publish", ["--model", hostile_export, "--output", str(tmp_path / "hub"),
                                          "--repo-id", "me/x", flag, value], capsys)
    assert code == 2 and f"error: {flag} " in err, err
    assert not (tmp_path / "hub").exists()


def test_a_run_folder_with_any_name_gives_a_valid_repo_name(model):
    """Own case: without --repo-id the card is named by the run folder; a folder named with spaces, <, >, '..'
    gives a valid Hub name, not a refusal or raw HTML."""
    from timm_aa.hub.publish import model_name

    name = model_name("runs/my run <b>..x/export", model)
    assert name == "resnet18_aa.my-run-b-.x"
    _, body = _split(str(render_card(model, CardInfo(f"your-org/{name}"))))
    assert f"\n# {name}\n" in body and f"hf-hub:your-org/{name}" in body


def test_eval_json_strings_never_reach_the_card_raw(hostile_export, tmp_path, capsys, model):
    """Every string of a --eval-json report: model and architecture names pick the rows, never reach the card;
    several hostile names in a refusal still make one line; a protocol not ours is refused."""
    row = dict(model=EVIL, architecture=EVIL, weights=EVIL, protocol="random", consistency=90.0, accuracy=80.0,
               num_images=10, resize=48, crop=40, passes=1)
    report = {"schema": "timm-aa/consistency/1", "results": [row, dict(row, model="x\n<script>")]}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(report))
    from timm_aa.hub import metrics_from_report

    with pytest.raises(TimmAAError) as err:
        metrics_from_report(str(path))
    assert len(str(err.value).splitlines()) == 1
    metrics = metrics_from_report(str(path), EVIL)
    card = str(render_card(model, CardInfo("me/x", metrics=metrics)))
    _assert_inert(card, str(render_card(model, CardInfo("me/x", metrics=metrics[:1] * len(metrics)))))
    path.write_text(json.dumps({**report, "results": [dict(row, protocol="<script>")]}))
    with pytest.raises(TimmAAError, match="protocol must be one of"):
        metrics_from_report(str(path), EVIL)


def test_a_revision_with_path_segments_is_refused_before_the_hub_client(tmp_path, monkeypatch):
    """Item 16: hf-hub:org/model@../../../../FILE made the Hub client write outside its cache when a server
    answered that revision. Refused in one line, before any request; nothing is written."""
    from hub_server import FakeHub
    from huggingface_hub import constants

    from timm_aa.loading import create_model_from_spec

    torch.manual_seed(0)
    export = write_export(timm.create_model("resnet18_aa", num_classes=3), str(tmp_path / "export"))
    cache = tmp_path / "a" / "b" / "hf"
    with FakeHub() as hub:
        hub.files["org/model"] = {n: open(os.path.join(export, n), "rb").read()
                                  for n in ("config.json", "model.safetensors")}
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                            hub.url + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        for spec in ("hf-hub:org/model@../../../../FILE", "hf-hub:org/model@/etc/passwd", "hf-hub:org/model@a\\..\\b",
                     "hf-hub:org/model@main\n", "hf-hub:../../model", "hf_hub:org/model@refs/../../x"):
            with pytest.raises(TimmAAError) as err:
                create_model_from_spec(spec)
            message = str(err.value)
            assert len(message.splitlines()) == 1 and ("revision" in message or "repo id" in message), message
        assert hub.requests == [] and not (tmp_path / "a" / "FILE").exists() and not cache.exists()
        assert create_model_from_spec("hf-hub:org/model@main").fc.out_features == 3  # a plain revision still works


REVISION = st.lists(st.sampled_from(["..", "/", "\\", ".", "\x00", "\n", "main", "v1", "refs", "pr", "3", "@{",
                                     ".lock", "-", "_", " "]), max_size=6).map("".join)


@settings(max_examples=200, deadline=None)
@given(revision=REVISION)
def test_any_revision_is_a_ref_name_or_refused(revision):
    """Property: a revision is accepted only when it cannot leave the cache's refs/ folder."""
    from timm_aa.infra.hub_names import parse_hub_spec

    try:
        _, got = parse_hub_spec(f"hf-hub:org/model@{revision}")
    except TimmAAError as err:
        assert len(str(err).splitlines()) == 1
        return
    parts = got.split("/")
    assert got == revision and ".." not in got and "\\" not in got and not got.startswith("/")
    assert all(p and not p.startswith(".") for p in parts) and got.isprintable() and " " not in got


def test_push_refuses_a_repo_id_or_revision_out_of_form_before_any_request(tmp_path):
    with pytest.raises(TimmAAError, match="repo_id='../../evil' must be a Hub repo id"):
        push_folder(str(tmp_path), "../../evil", token="hf_x")
    with pytest.raises(TimmAAError, match="revision='../x' must be a branch, tag or commit"):
        push_folder(str(tmp_path), "me/x", revision="../x", token="hf_x")


@pytest.mark.parametrize("org", ["../../evil", "a/b", "na me", "<script>", "x--y"])
def test_a_hub_org_out_of_form_is_one_line(monkeypatch, tmp_path, org):
    """TIMM_AA_HUB_ORG names the Hub repo of every Zhang tag (hf_hub_id ORG/model.tag): asking for Zhang's weights
    is refused in one line naming it; the models still register (import timm_aa works), with no Hub repo."""
    from timm_aa.models._zhang_releases import HUB_ORG_ENV, hub_org, zhang_pretrained_cfgs

    monkeypatch.setenv(HUB_ORG_ENV, org)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    for call in (hub_org, lambda: timm.create_model("resnet18_aa", pretrained=True)):
        with pytest.raises(TimmAAError) as err:
            call()
        assert len(str(err.value).splitlines()) == 1 and f"{HUB_ORG_ENV}={org!r}" in str(err.value)
    assert {cfg["hf_hub_id"] for cfg in zhang_pretrained_cfgs("resnet", {}).values()} == {None}
    monkeypatch.setenv(HUB_ORG_ENV, "my-org")
    assert hub_org() == "my-org"
