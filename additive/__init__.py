"""The science: latents and supports, rendering, models, training and metrics.

Knows nothing of Ray. Any trial runs from plain Python in one call::

    from additive import TrialSpec, run_trial
    result = run_trial(TrialSpec(image_size=32, steps=500))
"""

from additive.errors import AdxError, BudgetError, DivergedError, SpecError, SupportError
from additive.latents import MECHANISMS, SUPPORTS, LatentSpace
from additive.metrics import lms_spearman, lms_tree, mcc_pearson, rmse
from additive.models import (
    AdditiveDecoder,
    ConvEncoder,
    MaskedDecoder,
    MonolithicDecoder,
    ResNet18Encoder,
    make_decoder,
    make_encoder,
)
from additive.render import render_ball, render_balls
from additive.spec import TrialSpec
from additive.train import TrialResult, load_models, run_trial

__all__ = [
    "AdditiveDecoder",
    "AdxError",
    "BudgetError",
    "ConvEncoder",
    "DivergedError",
    "LatentSpace",
    "MECHANISMS",
    "MaskedDecoder",
    "MonolithicDecoder",
    "ResNet18Encoder",
    "SUPPORTS",
    "SpecError",
    "SupportError",
    "TrialResult",
    "TrialSpec",
    "lms_spearman",
    "lms_tree",
    "load_models",
    "make_decoder",
    "make_encoder",
    "mcc_pearson",
    "render_ball",
    "render_balls",
    "rmse",
    "run_trial",
]
