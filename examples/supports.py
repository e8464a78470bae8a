"""A support of your own: a cross (a plus sign) in the latent box.

A point is inside when all its coordinates but at most one lie in the central band of
width ``width``: for two balls, either ball may move over the whole range while the other
stays near the middle. The cross is path-connected and its Cartesian-product extension is
the whole box, so the corners are out of support (OOS). The contract
(additive/plugins.py): ``name(z, **options) -> bool array``, one per row of ``z`` (n, d).
"""

from __future__ import annotations

import numpy as np


def cross(z: np.ndarray, width: float = 0.3) -> np.ndarray:
    central = np.abs(z - 0.5) <= width / 2
    return central.sum(axis=1) >= z.shape[1] - 1
