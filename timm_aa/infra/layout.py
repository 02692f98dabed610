"""The names of the files and folders timm-aa writes and reads: an export folder, a training run, a checkpoint,
the tools' outputs, and our own lock, markers and temporaries. Every module that names one of them imports it
from here, and :data:`TOOL_FILES` (what each tool may write, which the ownership markers are checked against) is
built from the same names.

Standard library only: the scripts read it before torch is imported.

Example:
    >>> os.path.join('runs', 'r50', EXPORT, CONFIG)
    'runs/r50/export/config.json'
    >>> bool(TOOL_FILES['train'].match(f'{CHECKPOINTS}/epoch-0003/{TRAINER_STATE}'))
    True
"""

from __future__ import annotations

import re

# an export folder (what timm's local-dir:, hf-hub: and transformers read)
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
METRICS = "metrics.json"  # the publishing input: metrics and provenance of the weights
CARD = "README.md"  # a published folder's model card

# a training run folder
EXPORT = "export"
CHECKPOINTS = "checkpoints"
METRICS_LOG = "metrics.jsonl"
TRAINER_STATE = "trainer_state.json"  # in each checkpoint, written last
EMA_WEIGHTS = "ema.safetensors"  # in each checkpoint of a run with an EMA of the weights
CHECKPOINT_NAME = re.compile(r"^epoch-(\d{4,})$")

# the other tools' outputs
REPORT = "consistency.json"  # evaluate
DEMO_RESULT = "demo.json"  # the demo
DEMO_IMAGES = "digits-val"  # the demo's validation images, an ImageFolder

# other libraries' caches we read (their names, not ours)
TORCH_HUB_CHECKPOINTS = "checkpoints"  # torch.hub's folder of downloaded checkpoints (Zhang's package used it)
TIMM_HUB_WEIGHTS = (WEIGHTS, "pytorch_model.bin")  # what timm reads from a Hub repo that names no file

# ours in every output folder
LOCK = ".timm-aa.lock"
TEMP = ".timm-aa-tmp-"
MARKER = re.compile(r"^\.timm-aa-\w+\.json$")


def checkpoint_name(epoch: int) -> str:
    """The folder name of the checkpoint written after ``epoch``.

    Example:
        >>> checkpoint_name(3)
        'epoch-0003'
    """
    return f"epoch-{epoch:04d}"


def marker_name(tool: str) -> str:
    """The marker file of ``tool`` in the folders it writes.

    Example:
        >>> marker_name('publish')
        '.timm-aa-publish.json'
    """
    return f".timm-aa-{tool}.json"


def _names(*names: str) -> str:
    return "|".join(re.escape(n) for n in names)


#: the names each tool writes (relative paths, '/'-separated); a marker listing anything else is not ours
TOOL_FILES: dict[str, re.Pattern[str]] = {
    "train": re.compile(rf"^({_names(METRICS_LOG)}|{EXPORT}/({_names(WEIGHTS, CONFIG, METRICS)})"
                        rf"|{CHECKPOINTS}/epoch-\d{{4,}}/[\w.-]+)$"),
    "evaluate": re.compile(rf"^({_names(REPORT)}|[\w-]+\.png)$"),
    "publish": re.compile(rf"^({_names(CARD, CONFIG, WEIGHTS)})$"),
    "demo": re.compile(rf"^({_names(DEMO_RESULT)}|{DEMO_IMAGES}/\d/\d+\.png)$"),
    "convert": re.compile(rf"^[\w-]+\.[\w-]+/({_names(WEIGHTS, CONFIG, METRICS)})$"),
}
#: what each tool writes at the top of its folder (checked for files of someone else's before the work starts)
TOOL_WRITES: dict[str, tuple[str, ...]] = {
    "train": (METRICS_LOG, EXPORT),  # and the checkpoints of the epochs a run will train (see training)
    "evaluate": (REPORT,),
    "publish": (CARD, CONFIG, WEIGHTS),
    "demo": (DEMO_RESULT, DEMO_IMAGES),
    "convert": (),
}
#: names a user may make a link to a folder of theirs (another disk): written through, never deleted through
LINKABLE = (CHECKPOINTS,)
#: tools whose folders are collections: a later run of the same tool continues an earlier one's folder
COLLECTIONS = ("publish", "convert")
