"""Parse first, import torch after: timm_aa's torch-free modules, loaded without importing the package.

``import timm_aa`` registers the models, which imports torch and timm (about 4 s on a 2-core machine). The
scripts build their parsers from a few standard-library-only modules of the package (the CLI helpers, the
settings dataclasses with their defaults and choices), loaded here from their files under a private name,
and import the package itself only after the arguments are parsed. The classes loaded here are for reading
defaults and choices; the jobs use the package's own.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types

_PREFIX = "_timm_aa_light"


def light(name: str) -> types.ModuleType:
    """The module ``timm_aa.<name>`` (e.g. ``'cli'``, ``'training.config'``), run from its file without running
    any ``__init__.py`` of the package. It may import only the standard library and other such modules.

    Example:
        >>> light('cli').DEBUG_ENV
        'TIMM_AA_DEBUG'
    """
    full = f"{_PREFIX}.{name}"
    if full not in sys.modules:
        spec = importlib.util.find_spec("timm_aa")  # finds the package without importing it
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("timm_aa is not installed: pip install -e . (from the repository root)")
        root = list(spec.submodule_search_locations)[0]
        for folder, _, files in os.walk(root):  # stand-ins for every package, so that no __init__ ever runs
            if "__init__.py" in files:
                parts = os.path.relpath(folder, root).split(os.sep)
                package = ".".join([_PREFIX, *(p for p in parts if p != os.curdir)])
                if package not in sys.modules:
                    stand_in = types.ModuleType(package)
                    stand_in.__path__ = [folder]
                    sys.modules[package] = stand_in
        importlib.import_module(full)
    return sys.modules[full]
