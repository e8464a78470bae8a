"""The science: latents and supports, rendering, models, training and metrics.

Knows nothing of Ray. Any trial runs from plain Python in one call::

    from additive import TrialSpec, run_trial
    result = run_trial(TrialSpec(image_size=32, steps=500))

Names are loaded on first use, so ``from additive.errors import AdxError`` or reading a
``TrialSpec`` never imports torch.
"""

from __future__ import annotations

from additive.lazy import lazy_names

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
__getattr__, __dir__, __all__ = lazy_names("additive", _HOMES, globals())
