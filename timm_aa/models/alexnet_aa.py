"""Anti-aliased AlexNet in Zhang's layout (timm has no AlexNet).

The first conv runs at stride 2 with a BlurPool(2) after its ReLU (the original is stride 4), and
every MaxPool(3, 2) becomes MaxPool(3, stride 1) + BlurPool(2). The classifier is torchvision's
(adaptive 6x6 pool, two 4096-wide hidden layers with dropout), split timm-style into
``pre_logits`` and ``fc``.
"""

from typing import Any

import torch
from timm.models import generate_default_cfgs, register_model
from torch import nn

from ..layers import BlurPool2d
from ..layers.options import DEFAULT_FILT_SIZE, DEFAULT_PAD_MODE
from ._builders import build_aa_model
from ._cfgs import zhang_cfg
from ._zhang_releases import zhang_pretrained_cfgs


class AlexNet(nn.Module):
    """AlexNet ("One weird trick", torchvision variant) with Zhang's anti-aliasing.

    Example:
        >>> AlexNet(num_classes=10)(torch.randn(1, 3, 224, 224)).shape
        torch.Size([1, 10])
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        filt_size: int = DEFAULT_FILT_SIZE,
        pad_mode: str = DEFAULT_PAD_MODE,
        drop_rate: float = 0.5,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        self.num_classes = num_classes
        self.num_features = 256
        self.head_hidden_size = 4096
        self.drop_rate = drop_rate

        def blur(channels: int) -> BlurPool2d:
            return BlurPool2d(channels, filt_size=filt_size, stride=2, pad_mode=pad_mode, **dd)

        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 64, kernel_size=11, stride=2, padding=2, **dd), nn.ReLU(inplace=True), blur(64),
            nn.MaxPool2d(kernel_size=3, stride=1), blur(64),
            nn.Conv2d(64, 192, kernel_size=5, padding=2, **dd), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=1), blur(192),
            nn.Conv2d(192, 384, kernel_size=3, padding=1, **dd), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1, **dd), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1, **dd), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=1), blur(256),
        )
        self.feature_info = [
            dict(num_chs=64, reduction=2, module="features.1"),
            dict(num_chs=64, reduction=4, module="features.2"),
            dict(num_chs=64, reduction=8, module="features.4"),
            dict(num_chs=256, reduction=16, module="features.14"),
            dict(num_chs=256, reduction=32, module="features.16"),
        ]
        self.pool = nn.AdaptiveAvgPool2d((6, 6))
        self.pre_logits = nn.Sequential(
            nn.Dropout(drop_rate), nn.Linear(256 * 6 * 6, 4096, **dd), nn.ReLU(inplace=True),
            nn.Dropout(drop_rate), nn.Linear(4096, 4096, **dd), nn.ReLU(inplace=True),
        )
        self.fc = nn.Linear(4096, num_classes, **dd) if num_classes > 0 else nn.Identity()

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(4096, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.pre_logits(torch.flatten(self.pool(x), 1))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


default_cfgs = generate_default_cfgs(zhang_pretrained_cfgs("alexnet", zhang_cfg(first_conv="features.0",
                                                                                classifier="fc", pool_size=(6, 6))))


@register_model
def alexnet_aa(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """AlexNet, anti-aliased in Zhang's layout; ``pretrained=True`` loads his weights."""
    return build_aa_model("alexnet_aa", AlexNet, pretrained, **kwargs)
