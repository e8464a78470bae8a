"""Before any trial is scheduled: every distinct model configuration of a sweep checked
once on the driver (``additive.check``), so a bad field, an impossible shape or a missing
package stops the launch with one line naming the spec's key, and writes no trial."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from additive.errors import SpecError
from sweeps.spec import SweepSpec, readdress


@dataclass(frozen=True)
class Preflight:
    """What the check did: how many distinct configurations, and the seconds it took."""

    configurations: int
    seconds: float


def check_sweep(spec: SweepSpec, best_params: dict[int, dict[str, Any]] | None = None) -> Preflight:
    """Check each distinct model configuration of ``spec`` once (``additive.check``);
    raise the spec's error (``<file>: <key>: must ...``) at the first that fails."""
    from additive.check import check_key, check_trial

    start = time.perf_counter()
    seen: set[tuple] = set()
    for cell, params in _trials(spec, best_params or {}):
        trial = spec.trial_spec(cell, spec.seeds[0], params)
        key = check_key(trial)
        if key in seen:
            continue
        seen.add(key)
        try:
            check_trial(trial)
        except SpecError as exc:
            raise readdress(spec, exc, cell, params) from None
    return Preflight(len(seen), time.perf_counter() - start)


def _trials(spec: SweepSpec, best_params: dict[int, dict[str, Any]]):
    """(cell, searched fields) for every cell, with each end of every searched field's
    range: a search may build a model the cell's defaults do not."""
    probes: list[dict[str, Any]] = [{}]
    if spec.search is not None:
        for key, dist in spec.search.space.items():
            kind, args = next(iter(dist.items()))
            values = args if kind == "choice" else [args[0], args[-1]]
            probes += [{key: v} for v in values]
    for cell in spec.cells():
        base = best_params.get(cell.index, {})
        for params in probes:
            yield cell, {**base, **params}


__all__ = ["Preflight", "check_sweep"]
