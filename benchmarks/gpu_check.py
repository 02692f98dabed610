"""GPU exactness check: our layers and models on CUDA against Zhang's, in fp32 and bf16.

    python benchmarks/gpu_check.py      # skips (and says so) without a CUDA GPU
"""

from __future__ import annotations

import antialiased_cnns
import timm
import torch

import timm_aa
from timm_aa.layers import BlurPool2d, MaxBlurPool2d


def main() -> None:
    if not torch.cuda.is_available():
        print("no CUDA GPU: nothing checked")
        return
    print("device:", torch.cuda.get_device_name())
    torch.manual_seed(0)
    for filt in range(1, 8):
        for fmt in (torch.contiguous_format, torch.channels_last):
            x = torch.randn(8, 64, 57, 42, device="cuda").contiguous(memory_format=fmt)
            ours = BlurPool2d(64, filt, 2).cuda()(x)
            ref = antialiased_cnns.BlurPool(64, filt_size=filt, stride=2).cuda()(x)
            fp32 = (ours - ref).abs().max().item()
            bf16 = (BlurPool2d(64, filt, 2).cuda()(x.bfloat16()).float() - ref).abs().max().item()
            print(f"BlurPool filt {filt} {str(fmt)[6:]:>17}: fp32 max|diff| {fp32:.2e}, bf16 {bf16:.2e}")
            assert fp32 <= 1e-6 and bf16 <= 3e-2
    x = torch.randn(4, 16, 9, 9, device="cuda")
    assert MaxBlurPool2d(16).cuda()(x).shape == torch.nn.MaxPool2d(2, 2)(x).shape  # (4, 16, 4, 4)
    ref = antialiased_cnns.resnet50(filter_size=4).eval()
    ours = timm_aa.from_zhang(ref.state_dict(), "resnet50").eval()
    x = torch.randn(8, 3, 224, 224)
    with torch.no_grad():
        expected = ref.cuda()(x.cuda())
        got = ours.cuda()(x.cuda())
        cpu = ours.cpu()(x)
    print(f"resnet50_aa vs Zhang on CUDA: {(got - expected).abs().max().item():.2e}; "
          f"CUDA vs CPU: {(got.cpu() - cpu).abs().max().item():.2e}")
    for name in ("resnet18_aps", "resnet18_lps"):
        model = timm.create_model(name).eval().cuda()
        x = torch.randn(1, 3, 224, 224, device="cuda")
        with torch.no_grad():
            d = max((model(torch.roll(x, (dy, dx), (2, 3))) - model(x)).abs().max().item()
                    for dy, dx in [(1, 0), (0, 5), (-13, 7), (31, -32)])
        print(f"{name} circular-shift max|logit diff| on CUDA: {d:.2e}")


if __name__ == "__main__":
    main()
