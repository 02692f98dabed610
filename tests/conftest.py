"""Shared test helpers."""

from __future__ import annotations

import contextlib
import os
import subprocess

import pytest
import torch

# Without a GPU, the Triton backend's tests run its kernels in Triton's interpreter on CPU tensors; the flag is
# read when the kernels are defined (first use of the backend), so it is set before anything imports them.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


def randomize_batchnorm(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every BatchNorm random affine parameters and running statistics; return the model in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.normal_(0.0, 0.2, generator=gen)
                module.running_var.uniform_(0.5, 2.0, generator=gen)
                module.weight.uniform_(0.5, 1.5, generator=gen)
                module.bias.normal_(0.0, 0.2, generator=gen)
    return model.eval()


@pytest.fixture(scope="session")
def digits_folder(tmp_path_factory):
    """A real-image ImageFolder (scikit-learn digits, 3 classes) with train/ and val/."""
    from timm_aa.training.demo_data import digits_splits

    root = tmp_path_factory.mktemp("digits")
    splits = digits_splits()
    for split, source, per_class in (("train", splits.train, 12), ("val", splits.val, 5)):
        counts: dict[int, int] = {}
        for i, label in enumerate(source.labels):
            if label < 3 and counts.get(label, 0) < per_class:
                counts[label] = counts.get(label, 0) + 1
                os.makedirs(root / split / str(label), exist_ok=True)
                source.load(i).save(root / split / str(label) / f"{i}.png")
    return root


@contextlib.contextmanager
def tmpfs(folder, options: str):
    """A tmpfs mounted at ``folder`` (``options`` as for mount -o) for the block; skips the test where it cannot be
    mounted (mounting needs root)."""
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture
def unwritable(tmp_path):
    """A folder nothing can be written to: mode 0555 for a normal user; for root, who ignores permission bits, a
    read-only tmpfs mounted there. Skipped where neither works."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    with tmpfs(folder, "ro,size=64k"):
        yield folder


def run_script(name: str, argv: list[str], capsys) -> tuple[int, str, str]:
    """scripts/<name>.py's ``main(argv)`` in-process, as ``python scripts/<name>.py`` runs it: (exit code, stdout,
    stderr). A refusal (exit 2) must be one ``error:`` line, with no traceback."""
    main = __import__(name).main  # scripts/ is on sys.path (pytest_configure)
    code = main(argv)
    out, err = capsys.readouterr()
    if code == 2:
        assert len([line for line in err.splitlines() if line.startswith("error: ")]) == 1, err
        assert "Traceback" not in err, err
    return code, out, err


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def pytest_configure(config):
    """Make scripts/ importable so CLI tests can call each script's ``main(argv)`` in-process."""
    import os
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "scripts"))
