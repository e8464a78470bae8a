"""Before any trial is scheduled: every distinct model configuration of a sweep checked
once on the driver (``additive.check``), so a bad field, an impossible shape or a missing
package stops the launch with one line naming the spec's key, and writes no trial."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from additive.errors import SpecError
from sweeps.spec import SweepSpec, readdress


@dataclass(frozen=True)
class Preflight:
    """What the check did: how many distinct configurations, the seconds it took, and the
    plugins' sources that must travel to the workers (``additive.plugins.source_of``)."""

    configurations: int
    seconds: float
    plugin_sources: tuple[str, ...] = ()

    @property
    def plugin_paths(self) -> list[str]:
        """The folders to put on a worker's ``sys.path`` for the plugins to import there."""
        return sorted({os.path.dirname(p) for p in self.plugin_sources})


def check_sweep(spec: SweepSpec, best_params: dict[int, dict[str, Any]] | None = None) -> Preflight:
    """Check each distinct model configuration of ``spec`` once (``additive.check``);
    raise the spec's error (``<file>: <key>: must ...``) at the first that fails."""
    from additive.check import check_key, check_trial
    from additive.plugins import PLUGIN_FIELDS, is_plugin, source_of

    start = time.perf_counter()
    seen: set[tuple] = set()
    sources: set[str] = set()
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
        for name in PLUGIN_FIELDS:
            path = getattr(trial, name)
            if is_plugin(path) and (source := source_of(path)) is not None:
                sources.add(source)
    return Preflight(len(seen), time.perf_counter() - start, tuple(sorted(sources)))


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
