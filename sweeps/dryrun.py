"""A dry run of a sweep spec: one tiny trial per distinct model configuration, on the CPU.

``dry_run_spec`` shrinks a spec to what shows that every model it would train builds,
trains and is evaluated through the whole engine (Ray, rows, restarts, search, from_best):
a few steps on a few images, one seed, CPU, and one cell per distinct model configuration
(the model fields and the latent layout; data fields such as the support or the dependence
level are checked for every cell before scheduling anyway, ``sweeps.preflight``).
``adx sweep run SPEC --dry-run`` runs it; the test suite dry-runs every shipped preset.
"""

from __future__ import annotations

import copy
from typing import Any

from additive.check import MODEL_FIELDS
from sweeps.spec import VARIANT, SweepSpec, parse_sweep_spec

DRY_STEPS = 4
DRY_EVAL_EVERY = 2
DRY_SUFFIX = "-dry"
# The fields that decide the networks a trial builds: the model fields and the latent layout.
DRY_KEY_FIELDS = (*MODEL_FIELDS, "dataset", "n_objects")


def dry_run_spec(spec: SweepSpec) -> SweepSpec:
    """``spec`` shrunk to a dry run named ``<name>-dry`` (a ``from_best`` source is read
    from its own dry run, ``<source>-dry``)."""
    raw = copy.deepcopy(spec.raw)
    raw["name"] = spec.name + DRY_SUFFIX
    raw["seeds"] = [spec.seeds[0]]
    largest_batch = _largest_batch(spec)
    raw["fixed"] = {
        **(raw.get("fixed") or {}),
        "steps": DRY_STEPS,
        "eval_every": DRY_EVAL_EVERY,
        "n_train": max(256, largest_batch),
        "n_val": 16,
        "n_test": 16,
        "n_oos": 16,
        "batch_size": 16,
        "bn_recalibrate": 32,
        "patience": 0,
        "lr_warmup": 0,
        "accelerator": "cpu",
        "max_seconds": 0.0,
    }
    raw["grid"] = _distinct_models(spec)
    raw["resources"] = {"cpu": 1, "gpu": 0}
    raw.pop("max_concurrent", None)
    if raw.get("search"):
        raw["search"] = {**raw["search"], "n_trials": 2}
    raw.pop("scheduler", None)  # a dry run trains every trial to its few steps
    if spec.from_best is not None:
        raw["from_best"] = {"sweep": spec.from_best.sweep + DRY_SUFFIX}
        if spec.from_best.match is not None:
            raw["from_best"]["match"] = list(spec.from_best.match)
    if spec.grouped:
        raw["restarts"] = _dry_restarts(raw["restarts"])
        if raw["restarts"].get("rungs"):  # room for two rungs before the end
            raw["fixed"]["steps"] = DRY_STEPS + DRY_EVAL_EVERY
    return parse_sweep_spec(raw, f"{spec.source} (dry run)")


def _distinct_models(spec: SweepSpec) -> dict[str, list[dict[str, Any]]]:
    """The first cell of each distinct model configuration, as variants named by cell id."""
    seen: set[tuple] = set()
    variants = []
    for cell in spec.cells():
        trial = spec.trial_spec(cell, spec.seeds[0])
        key = tuple(getattr(trial, f) for f in DRY_KEY_FIELDS)
        if key in seen:
            continue
        seen.add(key)
        fields = {k: v for k, v in cell.fields.items() if k != "seed"}
        variants.append({"name": cell.id, **fields})
    return {VARIANT: variants}


def _largest_batch(spec: SweepSpec) -> int:
    sizes = [spec.trial_spec(cell, spec.seeds[0]).batch_size for cell in spec.cells() if "batch_size" in cell.fields]
    if spec.search is not None and "batch_size" in spec.search.space:
        sizes += [int(v) for v in next(iter(spec.search.space["batch_size"].values()))]
    return max(sizes, default=16)


def _dry_restarts(raw: dict[str, Any]) -> dict[str, Any]:
    """Two members chosen at the first evaluation; with rungs, three members raced at the
    first two evaluations."""
    if raw.get("rungs"):
        return {"k": min(int(raw.get("k", 3)), 3), "rungs": [DRY_EVAL_EVERY, 2 * DRY_EVAL_EVERY]}
    out = {**raw, "k": min(int(raw.get("k", 2)), 2)}
    if out.get("select_at") is not None:
        out["select_at"] = DRY_EVAL_EVERY
    return out
