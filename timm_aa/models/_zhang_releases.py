"""Zhang's released ImageNet-1k checkpoints: the one table the model registrations, pretrained configs,
converter and downloads all derive from, and the pretrained configs of its tags.

Which tags exist, how his files are named and the Hub repository each tag names (``TIMM_AA_HUB_ORG``, read at
import): docs/pretrained.md. His files lived under :data:`ZHANG_BASE_URL`, which answers HTTP 403 since 2024;
``TIMM_AA_ZHANG_URL`` names a mirror. Where the weights come from when the Hub repository is missing: see
``sources.py``.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import TimmAAError
from ..infra.env import read_env
from ..infra.hub_names import org_problem

ZHANG_BASE_URL = "https://antialiased-cnns.s3.us-east-2.amazonaws.com/weights_v0.1/"
ZHANG_URL_ENV = "TIMM_AA_ZHANG_URL"
ORIGIN_URL = "https://github.com/adobe/antialiased-cnns"
WEIGHTS_LICENSE = "cc-by-nc-sa-4.0"
HUB_ORG_ENV = "TIMM_AA_HUB_ORG"
DEFAULT_HUB_ORG = "timm-aa"

_TAG = re.compile(r"^zhang_lpf(\d)(_ft)?_in1k$")
_FILE = re.compile(r"^(?P<arch>[a-z0-9_]+?)_lpf(?P<filt>\d)(?P<ft>_finetune)?(?:-(?P<hash>[0-9a-f]{8,64}))?\.pth$")


def parse_zhang_tag(tag: str | None) -> tuple[int, bool] | None:
    """``(filt_size, finetuned)`` of a Zhang tag, or ``None`` for other tags.

    Example:
        >>> parse_zhang_tag('zhang_lpf5_in1k'), parse_zhang_tag('a1_in1k')
        ((5, False), None)
    """
    match = _TAG.match(tag or "")
    return (int(match.group(1)), bool(match.group(2))) if match else None


@dataclass(frozen=True)
class ZhangFile:
    """One released checkpoint: his architecture, filter size, fine-tuned or not, and its hash prefix."""

    arch: str
    model: str
    filt_size: int
    finetuned: bool
    sha256_prefix: str

    @property
    def name(self) -> str:
        """His exact file name, e.g. ``resnet50_lpf4_finetune-cad66808.pth``."""
        return f"{self.arch}_lpf{self.filt_size}{'_finetune' if self.finetuned else ''}-{self.sha256_prefix}.pth"

    @property
    def tag(self) -> str:
        """Our pretrained tag for it: ``zhang_lpf4_ft_in1k`` (fine-tuned) or ``zhang_lpf{2,3,4,5}_in1k``."""
        return f"zhang_lpf{self.filt_size}{'_ft' if self.finetuned else ''}_in1k"

    @property
    def url(self) -> str:
        """Where his package downloaded it from (or the mirror named by ``TIMM_AA_ZHANG_URL``)."""
        base = read_env(ZHANG_URL_ENV) or ZHANG_BASE_URL
        return base.rstrip("/") + "/" + self.name


@dataclass(frozen=True)
class ZhangRelease:
    """One architecture of Zhang's: his name, our model, and the hash prefixes of its files."""

    arch: str  # his name: antialiased_cnns.<arch>
    model: str  # our registered model
    title: str  # for docstrings
    family: str  # the module of ours that registers it: resnet, densenet, vgg, mobilenet, alexnet
    finetuned: str  # hash prefix of <arch>_lpf4_finetune-<hash>.pth
    scratch: dict[int, str] = field(default_factory=dict)  # filter size -> hash prefix of <arch>_lpf<k>-<hash>.pth

    @property
    def files(self) -> tuple[ZhangFile, ...]:
        """His files, the fine-tuned one (the default) first, then from scratch: filter 4, 2, 3, 5."""
        scratch = sorted(self.scratch, key=lambda k: (k != 4, k))
        return (ZhangFile(self.arch, self.model, 4, True, self.finetuned),
                *(ZhangFile(self.arch, self.model, k, False, self.scratch[k]) for k in scratch))


_R = ZhangRelease
ZHANG_RELEASES: tuple[ZhangRelease, ...] = (
    _R("resnet18", "resnet18_aa", "ResNet-18", "resnet", "8cc58f59",
       {2: "6e2ee76f", 3: "449351b9", 4: "8c77af40", 5: "c1eed0a1"}),
    _R("resnet34", "resnet34_aa", "ResNet-34", "resnet", "db622952",
       {2: "4707aed9", 3: "16aa6c48", 4: "55747267", 5: "85283561"}),
    _R("resnet50", "resnet50_aa", "ResNet-50", "resnet", "cad66808",
       {2: "f0f7589d", 3: "a4e868d2", 4: "994b528f", 5: "9953c9ad"}),
    _R("resnet101", "resnet101_aa", "ResNet-101", "resnet", "9280acb0",
       {2: "3d00941d", 3: "928f1444", 4: "f8a116ff", 5: "1f3745af"}),
    _R("resnet152", "resnet152_aa", "ResNet-152", "resnet", "7f67d9ae"),
    _R("resnext50_32x4d", "resnext50_32x4d_aa", "ResNeXt-50 32x4d", "resnet", "9106e549"),
    _R("resnext101_32x8d", "resnext101_32x8d_aa", "ResNeXt-101 32x8d", "resnet", "8f13a25d"),
    _R("wide_resnet50_2", "wide_resnet50_2_aa", "Wide ResNet-50-2", "resnet", "02a183f7"),
    _R("wide_resnet101_2", "wide_resnet101_2_aa", "Wide ResNet-101-2", "resnet", "da4eae04"),
    _R("densenet121", "densenet121_aa", "DenseNet-121", "densenet", "eceaa619",
       {2: "7da7d4cd", 3: "0f267ad8", 4: "edeaab00", 5: "ebc7880c"}),
    _R("densenet161", "densenet161_aa", "DenseNet-161", "densenet", "a5e0f328"),
    _R("densenet169", "densenet169_aa", "DenseNet-169", "densenet", "992131e6"),
    _R("densenet201", "densenet201_aa", "DenseNet-201", "densenet", "736979b2"),
    _R("mobilenet_v2", "mobilenetv2_100_aa", "MobileNetV2 1.0", "mobilenet", "7eed94b1",
       {2: "f4379012", 3: "23b2e2ee", 4: "2e0b9cb9", 5: "ab8fe968"}),
    _R("vgg11", "vgg11_aa", "VGG-11", "vgg", "35eab449"),
    _R("vgg11_bn", "vgg11_bn_aa", "VGG-11 with batch norm", "vgg", "5d60b5e4"),
    _R("vgg13", "vgg13_aa", "VGG-13", "vgg", "d8ff02c4"),
    _R("vgg13_bn", "vgg13_bn_aa", "VGG-13 with batch norm", "vgg", "45e2a72f"),
    _R("vgg16", "vgg16_aa", "VGG-16", "vgg", "79c9dff7",
       {2: "60268e0c", 3: "e9b0ce42", 4: "de9267ac", 5: "1391f70c"}),
    _R("vgg16_bn", "vgg16_bn_aa", "VGG-16 with batch norm", "vgg", "1dd798d1",
       {2: "2c2052a8", 3: "1782878a", 4: "a1c3559b", 5: "c500b52f"}),
    _R("vgg19", "vgg19_aa", "VGG-19", "vgg", "7ab2cf45"),
    _R("vgg19_bn", "vgg19_bn_aa", "VGG-19 with batch norm", "vgg", "d0114293"),
    _R("alexnet", "alexnet_aa", "AlexNet", "alexnet", "20598a7a",
       {2: "da8aca74", 3: "f9bbc410", 4: "0114fe25", 5: "4fa3706a"}),
)


def zhang_releases(family: str | None = None) -> tuple[ZhangRelease, ...]:
    """The table, or the rows of one family.

    Example:
        >>> [r.model for r in zhang_releases('densenet')]
        ['densenet121_aa', 'densenet161_aa', 'densenet169_aa', 'densenet201_aa']
    """
    return tuple(r for r in ZHANG_RELEASES if family is None or r.family == family)


def zhang_release(name: str) -> ZhangRelease:
    """The row of his architecture name or our model name; ``TimmAAError`` for others.

    Example:
        >>> zhang_release('mobilenet_v2').model, zhang_release('resnet50_aa').arch
        ('mobilenetv2_100_aa', 'resnet50')
    """
    for release in ZHANG_RELEASES:
        if name in (release.arch, release.model):
            return release
    known = ", ".join(r.arch for r in ZHANG_RELEASES)
    raise TimmAAError(f"unknown Zhang architecture {name!r}; expected one of {known}")


def zhang_file(model: str, tag: str | None) -> ZhangFile | None:
    """The checkpoint behind ``<model>.<tag>``, or ``None`` when it is not one of Zhang's.

    Example:
        >>> zhang_file('resnet50_aa', 'zhang_lpf4_ft_in1k').name
        'resnet50_lpf4_finetune-cad66808.pth'
    """
    for release in ZHANG_RELEASES:
        if release.model == model:
            return next((f for f in release.files if f.tag == tag), None)
    return None


def parse_file_name(path: str) -> tuple[ZhangRelease, int, bool, str | None]:
    """``(release, filt_size, finetuned, hash_prefix)`` read from a file named like his; the hash part is
    optional. ``TimmAAError`` for other names.

    Example:
        >>> release, filt, ft, digest = parse_file_name('w/resnet50_lpf4_finetune-cad66808.pth')
        >>> release.model, filt, ft, digest
        ('resnet50_aa', 4, True, 'cad66808')
    """
    base = os.path.basename(path)
    match = _FILE.match(base)
    if not match or match.group("arch") not in {r.arch for r in ZHANG_RELEASES}:  # his names, not ours
        raise TimmAAError(f"{base!r} is not named like Zhang's checkpoints (ARCH_lpfK[_finetune]-HASH.pth, e.g. "
                          "resnet50_lpf4_finetune-cad66808.pth); name it so, or load it with "
                          "timm_aa.from_zhang(path, arch, filt_size)")
    return zhang_release(match.group("arch")), int(match.group("filt")), bool(match.group("ft")), match.group("hash")


def hub_org() -> str:
    """The Hub organisation of our converted weights (``TIMM_AA_HUB_ORG`` or ``timm-aa``); one out of form (it would
    make every tag's repo id, and a path in the Hub cache) is a TimmAAError naming the variable, raised when Zhang's
    weights are asked for (:func:`~timm_aa.models._zhang_sources.zhang_weights`), not when the models register.

    Example:
        >>> hub_org()
        'timm-aa'
    """
    org = read_env(HUB_ORG_ENV) or DEFAULT_HUB_ORG
    wrong = org_problem(org)
    if wrong:
        raise TimmAAError(f"{HUB_ORG_ENV}={org!r} {wrong}: set it to the organisation of the weights, or unset it")
    return org


def zhang_pretrained_cfgs(family: str, base_cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{'<model>.<tag>': cfg}`` for every checkpoint Zhang released in ``family``, each model's fine-tuned
    one first (timm's default tag).

    Example:
        >>> list(zhang_pretrained_cfgs('alexnet', {}))[:2]
        ['alexnet_aa.zhang_lpf4_ft_in1k', 'alexnet_aa.zhang_lpf4_in1k']
    """
    cfgs = {}
    for release in zhang_releases(family):
        for file in release.files:
            how = "fine-tuned from the torchvision baseline" if file.finetuned else "trained from scratch"
            cfgs[f"{file.model}.{file.tag}"] = dict(
                base_cfg, hf_hub_id=_tag_repo(file), license=WEIGHTS_LICENSE,
                origin_url=ORIGIN_URL, description=f"Zhang's ImageNet-1k {release.arch} with a filter of size "
                                                   f"{file.filt_size}, {how} ({file.name}); converted.",
            )
    return cfgs


def _tag_repo(file: ZhangFile) -> str | None:
    """The Hub repo id of a tag, None while ``TIMM_AA_HUB_ORG`` is out of form (importing timm_aa still works)."""
    try:
        return f"{hub_org()}/{file.model}.{file.tag}"
    except TimmAAError:
        return None
