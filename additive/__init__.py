"""The science: latents and supports, rendering, models, training and metrics.

Knows nothing of Ray. Any trial runs from plain Python in one call::

    from additive import TrialSpec, run_trial
    result = run_trial(TrialSpec(image_size=32, steps=500))

Names are loaded on first use, so ``from additive.errors import AdxError`` or reading a
``TrialSpec`` never imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "errors": ("AdxError", "BudgetError", "DivergedError", "SpecError", "SupportError"),
    "latents": ("MECHANISMS", "SUPPORTS", "LatentSpace"),
    "metrics": ("lms_spearman", "lms_tree", "mcc_pearson", "rmse"),
    "models": (
        "AdditiveDecoder",
        "Body",
        "ConvEncoder",
        "MaskedDecoder",
        "MonolithicDecoder",
        "ResNet18Encoder",
        "make_decoder",
        "make_encoder",
    ),
    "render": ("render_ball", "render_balls"),
    "restarts": ("GroupResult", "MemberResult", "run_restarts", "select_restart"),
    "spec": ("RestartsSpec", "TrialSpec"),
    "train": ("TrialResult", "load_models", "run_trial"),
}
_WHERE = {name: module for module, names in _HOMES.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'additive' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"additive.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
