"""Plugins: the user's own decoder, encoder or support, named by import path.

Wherever a trial takes a ``decoder``, ``encoder`` or ``support``, it also takes
``package.module:name``; the object at that path is called as

- decoder: ``name(spec, block_sizes, **decoder_options) -> torch.nn.Module``, latents
  ``(B, sum(block_sizes))`` to images ``(B, 3, image_size, image_size)`` in [0, 1] pixels
  (the scale the built-in decoders produce), trained with the same loss. Its LMS is scored
  over the best partition of the latent dimensions into blocks (as the monolithic
  decoder's), unless the module declares ``additive_blocks = block_sizes``: the latent
  dimensions are its blocks in order, as the additive decoder's (``declares_blocks``);
- encoder: ``name(spec, latent_dim, **encoder_options) -> torch.nn.Module``, images to
  ``(B, latent_dim)``;
- support: ``name(z, **support_options) -> numpy bool array``, whether each row of ``z``
  ``(n, d)`` lies in the support (inside the box the built-in supports use,
  ``additive.latents.LOW``/``HIGH``); sampling, dependence and the OOS set then work as
  for the built-ins.

Options are a JSON mapping in the trial (``decoder_options: {width: 128}``), recorded in
every row and part of the cell. A module in the current folder is found without setting
PYTHONPATH, as ``uvicorn main:app`` finds ``main.py``. A plugin path runs the user's own
code, with the same trust as the spec file that names it.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
from collections.abc import Callable
from typing import Any

from additive.errors import SpecError

PLUGIN_RE = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
)
PLUGIN_FIELDS = ("decoder", "encoder", "support")
WHERE = (
    "it must be importable where the trials run: a module in the folder adx runs from, an installed package, "
    "or (on a cluster) shipped with `ray job submit --working-dir .`"
)


def is_plugin(value: object) -> bool:
    """Whether ``value`` names a plugin (``package.module:name``) rather than a built-in."""
    return isinstance(value, str) and PLUGIN_RE.match(value) is not None


def plugin_name(path: str) -> str:
    """A readable name for tables: the object's name (``make_decoder`` of ``my.mod:make_decoder``)."""
    return path.rsplit(":", 1)[-1].rsplit(".", 1)[-1]


def load_plugin(path: str, field: str) -> Callable[..., Any]:
    """The callable at ``path`` (``package.module:name``), imported with the current folder
    on ``sys.path``; a ``SpecError`` naming ``field`` when it cannot be found."""
    module_name, _, attr = path.partition(":")
    here = os.getcwd()
    if here not in sys.path:
        sys.path.insert(0, here)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        first = (str(exc).splitlines() or [""])[0]
        if getattr(exc, "name", None) and module_name.startswith(str(exc.name)):
            raise _error(field, f"name an importable module, but got {path!r}: {first}; {WHERE}") from None
        raise _error(
            field, f"import, but got {path!r}: {type(exc).__name__}: {first} (a package it needs is missing)"
        ) from None
    except Exception as exc:
        first = (str(exc).splitlines() or [""])[0]
        raise _error(
            field, f"import, but got {path!r}: importing {module_name!r} raised {type(exc).__name__}: {first}"
        ) from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise _error(field, f"name an object of module {module_name!r}, but got {path!r} (no {part!r} there)")
        obj = getattr(obj, part)
    if not callable(obj):
        raise _error(field, f"name a callable, but got {path!r} (a {type(obj).__name__})")
    return obj


def parse_options(value: Any, field: str) -> str | None:
    """Options as canonical JSON text (sorted keys), the form a trial stores; null for none
    (a missing value read back from a table, NaN, too)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise _error(field, f"be a mapping of option names to values, but got {value!r}") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise _error(field, f"be a mapping of option names to values, but got {value!r}")
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        raise _error(field, f"hold numbers, strings, booleans, lists or mappings only, but got {value!r}") from None


def options(text: str | None) -> dict[str, Any]:
    """The keyword arguments stored as ``parse_options`` text."""
    return {} if not text else json.loads(text)


def call_plugin(path: str, field: str, *args: Any, options_text: str | None = None) -> Any:
    """Load and call a plugin; what it raises is re-raised as a ``SpecError`` naming the field."""
    factory = load_plugin(path, field)
    kwargs = options(options_text)
    try:
        return factory(*args, **kwargs)
    except SpecError:
        raise
    except Exception as exc:
        first = (str(exc).splitlines() or [""])[0]
        raise _error(field, f"run, but {path!r} raised {type(exc).__name__}: {first}") from None


def source_of(path: str) -> str | None:
    """The file or package folder of a plugin's top-level module when it is neither
    installed nor part of this project (so it must travel to the workers); else None."""
    top = path.partition(":")[0].split(".")[0]
    module = sys.modules.get(top)
    if module is None:
        return None
    location = getattr(module, "__file__", None)
    if location is None:  # a namespace package
        return None
    location = os.path.abspath(location)
    if os.path.basename(location) == "__init__.py":
        location = os.path.dirname(location)
    if "site-packages" in location.split(os.sep) or "dist-packages" in location.split(os.sep):
        return None
    project = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if top in ("additive", "sweeps", "analysis") and location.startswith(project):
        return None
    return location


def _error(field: str, requirement: str) -> SpecError:
    return SpecError(f"`{field}` must {requirement}", field=field, requirement=f"must {requirement}")


ADDITIVE_BLOCKS = "additive_blocks"  # the attribute a plugin decoder declares its blocks with


def declares_blocks(decoder: object, block_sizes: tuple[int, ...]) -> bool:
    """Whether a plugin decoder declares that its latent blocks are ``block_sizes`` in order
    (``decoder.additive_blocks``), so that its LMS is scored on those blocks, as the additive
    decoder's is; a ``SpecError`` naming ``decoder`` when it declares other blocks."""
    declared = getattr(decoder, ADDITIVE_BLOCKS, None)
    if declared is None:
        return False
    try:
        sizes = tuple(int(b) for b in declared)
    except (TypeError, ValueError):
        sizes = None
    if sizes != tuple(block_sizes):
        requirement = (
            f"must declare `{ADDITIVE_BLOCKS}` equal to the latent blocks {tuple(block_sizes)}, but got {declared!r}"
        )
        raise SpecError(f"`decoder` {requirement}", field="decoder", requirement=requirement)
    return True
