"""Sweep specs: YAML parsed and validated once, at the edge, into a frozen ``SweepSpec``.

A sweep spec names trial fields that are ``fixed``, crossed in a ``grid`` (each
combination is a *cell*), repeated over ``seeds`` and, optionally, searched per (cell,
seed) with Optuna (``search``). The grid key ``variant`` takes named sets of fields
(``{name: no-bn, batch_norm: false}``), for one-at-a-time ablations; its name is a column
of the results. Every error reads
``<file>: <key path>: must ..., but got ...`` and stops the launch before anything runs.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

import yaml

from additive.errors import SpecError
from additive.spec import RestartsSpec, TrialSpec, trial_field_names
from sweeps.results import SWEEP_NAME_RE

TOP_KEYS = (
    "name",
    "description",
    "fixed",
    "grid",
    "seeds",
    "search",
    "from_best",
    "scheduler",
    "resources",
    "max_concurrent",
    "retries",
    "save_weights",
    "tensorboard",
    "oracle_selection",
    "restarts",
)
VARIANT = "variant"
_VARIANT_KEY = "__variant__"
SEARCH_KEYS = ("metric", "mode", "n_trials", "sampler", "space", "seed")
SAMPLERS = ("tpe", "random")
DISTRIBUTIONS = ("loguniform", "uniform", "int", "logint", "choice")
# What model selection may use: reconstruction losses, no ground-truth latents, no OOS images.
SEARCH_METRICS = ("val_loss", "train_loss")
# Quantities that need ground truth (latents or OOS images): selecting on them is an oracle,
# allowed only with `oracle_selection: true`, and the rows and tables say so.
ORACLE_METRICS = ("rmse_id", "rmse_ood", "rmse_recombine", "lms_id", "lms_ood", "mcc_id")
SCHEDULERS = ("asha",)
NAME_RE = SWEEP_NAME_RE


class SweepSpecError(SpecError):
    """An invalid sweep spec; the message names the file and the key path."""


@dataclass(frozen=True)
class SearchSpec:
    metric: str = "val_loss"
    mode: str = "min"
    n_trials: int = 10
    sampler: str = "tpe"
    space: dict[str, dict[str, list]] = field(default_factory=dict)
    seed: int = 0


@dataclass(frozen=True)
class FromBest:
    sweep: str
    match: tuple[str, ...] | None = None  # None: the earlier sweep's grid keys


@dataclass(frozen=True)
class Cell:
    """One combination of the grid: its index, a readable label and its trial fields."""

    index: int
    label: str
    fields: dict[str, Any]
    variant: str | None = None

    @property
    def id(self) -> str:
        return f"c{self.index:03d}"


@dataclass(frozen=True)
class SweepSpec:
    name: str
    fixed: dict[str, Any]
    grid: dict[str, list]
    seeds: tuple[int, ...]
    search: SearchSpec | None = None
    from_best: FromBest | None = None
    scheduler: dict[str, Any] | None = None
    resources: dict[str, float] = field(default_factory=lambda: {"cpu": 1.0, "gpu": 0.0})
    max_concurrent: int | None = None
    retries: int = 2
    description: str = ""
    save_weights: bool = False
    tensorboard: bool = False  # Ray Tune's TensorBoard logger: event files under <sweep>/_ray
    oracle_selection: bool = False
    restarts: RestartsSpec = field(default_factory=RestartsSpec)
    source: str = "<spec>"
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    def cells(self) -> list[Cell]:
        """The crossed grid, in a deterministic order."""
        keys = list(self.grid)
        out = []
        for i, combo in enumerate(itertools.product(*(self.grid[k] for k in keys))):
            fields: dict[str, Any] = {}
            for value in combo:
                fields.update(value)
            variant = fields.pop(_VARIANT_KEY, None)
            label = ",".join(_label(k, v) for k, v in zip(keys, combo, strict=True)) or "all"
            out.append(Cell(i, label, fields, variant))
        return out

    @property
    def grouped(self) -> bool:
        """Whether each (cell, seed[, search trial]) is a restart group of several members."""
        return self.restarts.k > 1

    def trial_spec(self, cell: Cell, seed: int, params: dict[str, Any] | None = None) -> TrialSpec:
        values = {**self.fixed, **cell.fields, **(params or {}), "seed": seed}
        return TrialSpec.from_dict(values)

    @property
    def n_planned(self) -> int:
        per = self.search.n_trials if self.search else 1
        return len(self.cells()) * len(self.seeds) * per * self.restarts.k


def _label(key: str, value: dict[str, Any]) -> str:
    def fmt(v: Any) -> str:
        return f"{v:g}" if isinstance(v, float) else str(v)

    if key == "dependence" and "dependence_mechanism" in value:
        return f"dependence={value['dependence_mechanism']}:{fmt(value['dependence'])}"
    if key == VARIANT:
        return f"variant={value[_VARIANT_KEY]}"
    if key == "support" and value.get("support_param") is not None:
        return f"support={value['support']}:{fmt(value['support_param'])}"
    options = value.get(f"{key}_options")
    if key in ("decoder", "encoder", "support") and options:
        return f"{key}={value[key]}({_options_label(options)})"
    if key.endswith("_options"):
        return f"{key}={_options_label(value[key]) if value[key] else 'none'}"
    return f"{key}={fmt(next(iter(value.values())))}"


def _options_label(options: Any) -> str:
    """Options as ``k=v`` pairs, sorted: ``{width: 128, depth: 2}`` -> ``depth=2,width=128``."""
    import json

    mapping = json.loads(options) if isinstance(options, str) else dict(options)
    return ",".join(f"{k}={v}" for k, v in sorted(mapping.items()))


# ----------------------------------------------------------------------------------------
def load_sweep_spec(path: str | Path, overrides: list[str] | None = None, name: str | None = None) -> SweepSpec:
    """Read, override (``key.path=value``) and validate a sweep spec file."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SweepSpecError(f"{source}: cannot read the spec: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SweepSpecError(f"{source}: cannot read the spec: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise SweepSpecError(f"{source}: malformed YAML{where}: {problem}") from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise SweepSpecError(f"{source}: (top level): must be a mapping of keys to values, but got {_kind(raw)}")
    for item in overrides or []:
        _apply_override(raw, item, source)
    if name is not None:
        raw["name"] = name
    return parse_sweep_spec(raw, source)


def _apply_override(raw: dict, item: str, source: str) -> None:
    if "=" not in item:
        raise SweepSpecError(f"{source}: --set {item}: must be KEY.PATH=VALUE, but got {item!r}")
    key, text = item.split("=", 1)
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise SweepSpecError(f"{source}: --set {key}: must be a YAML value, but got {text!r}") from None
    node = raw
    parts = key.strip().split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), type(value).__name__
    ) + (f" {value!r}" if isinstance(value, (int, float, str)) and not isinstance(value, bool) else "")


def parse_sweep_spec(raw: dict[str, Any], source: str = "<spec>") -> SweepSpec:
    """Validate a parsed mapping into a ``SweepSpec`` (every cell, search bound and seed
    resolved to a valid ``TrialSpec``)."""

    def fail(path: str, requirement: str, got: Any = None, show: bool = True) -> SweepSpecError:
        tail = f"must {requirement}, but got {got!r}" if show else f"must {requirement}"
        return SweepSpecError(f"{source}: {path}: {tail}")

    for key in raw:
        if key not in TOP_KEYS:
            raise fail(str(key), f"be one of the known keys {list(TOP_KEYS)}", key)
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise fail("name", "be a name of letters, digits, '-', '_' or '.' (set it in the file or with --name)", name)
    fields = set(trial_field_names())
    if not any(raw.get(key) for key in ("fixed", "grid", "search", "from_best")):
        raise SweepSpecError(
            f"{source}: (top level): must set trial fields in `fixed` or `grid` (a spec without them would run "
            f"one trial of every default), but got only {sorted(map(str, raw)) or 'an empty file'}"
        )

    fixed = raw.get("fixed", {}) or {}
    if not isinstance(fixed, dict):
        raise fail("fixed", "be a mapping of trial fields to values", fixed)
    for key in fixed:
        if key not in fields:
            raise fail(f"fixed.{key}", "be a known trial field (see `adx trial fields`)", key)
    if "seed" in fixed:
        raise fail("fixed.seed", "not be set: use the top-level `seeds`", fixed["seed"])

    grid_raw = raw.get("grid", {}) or {}
    if not isinstance(grid_raw, dict):
        raise fail("grid", "be a mapping of trial fields to lists of values", grid_raw)
    grid: dict[str, list] = {}
    for key, values in grid_raw.items():
        if key not in fields and key not in ("dependence", "support", VARIANT):
            raise fail(f"grid.{key}", "be a known trial field (see `adx trial fields`)", key)
        if key == "seed":
            raise fail("grid.seed", "not be set: use the top-level `seeds`", values)
        if not isinstance(values, list) or not values:
            raise fail(f"grid.{key}", "be a non-empty list of values", values)
        grid[key] = [_grid_value(key, v, f"grid.{key}[{i}]", fail, fields) for i, v in enumerate(values)]
        if key == VARIANT:
            names = [v[_VARIANT_KEY] for v in grid[key]]
            if len(set(names)) != len(names):
                raise fail(f"grid.{key}", "give each variant a different name", names)

    seeds_raw = raw.get("seeds", 1)
    if isinstance(seeds_raw, bool) or not isinstance(seeds_raw, (int, list)):
        raise fail("seeds", "be a positive count or a non-empty list of integers", seeds_raw)
    if isinstance(seeds_raw, int):
        if seeds_raw < 1:
            raise fail("seeds", "be a positive count or a non-empty list of integers", seeds_raw)
        seeds = tuple(range(seeds_raw))
    else:
        if not seeds_raw or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds_raw):
            raise fail("seeds", "be a positive count or a non-empty list of integers >= 0", seeds_raw)
        if len(set(seeds_raw)) != len(seeds_raw):
            raise fail("seeds", "list each seed once", seeds_raw)
        seeds = tuple(seeds_raw)

    oracle_selection = raw.get("oracle_selection", False)
    if not isinstance(oracle_selection, bool):
        raise fail("oracle_selection", "be true or false", oracle_selection)
    search = _parse_search(raw.get("search"), fields, fail, oracle_selection)
    from_best = _parse_from_best(raw.get("from_best"), fail)
    scheduler = _parse_scheduler(raw.get("scheduler"), fail)
    if scheduler is not None and search is not None and search.metric in ORACLE_METRICS:
        raise fail(
            "scheduler",
            f"be absent when search.metric is {search.metric!r}: it is only known when a trial ends",
            scheduler,
        )
    resources = _parse_resources(raw.get("resources"), fail)
    restarts = _parse_restarts(raw.get("restarts"), fail)
    if scheduler is not None and restarts.k > 1:
        raise fail(
            "scheduler",
            "be absent with restarts (k > 1): the restart selection already stops the members it does not keep",
            scheduler,
        )

    max_concurrent = raw.get("max_concurrent")
    if max_concurrent is not None and (
        isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int) or max_concurrent < 1
    ):
        raise fail("max_concurrent", "be a positive integer or null", max_concurrent)
    retries = raw.get("retries", 2)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise fail("retries", "be an integer >= 0", retries)
    save_weights = raw.get("save_weights", False)
    if not isinstance(save_weights, bool):
        raise fail("save_weights", "be true or false", save_weights)
    tensorboard = raw.get("tensorboard", False)
    if not isinstance(tensorboard, bool):
        raise fail("tensorboard", "be true or false", tensorboard)
    description = raw.get("description", "") or ""
    if not isinstance(description, str):
        raise fail("description", "be a string", description)

    spec = SweepSpec(
        name=name,
        fixed=dict(fixed),
        grid=grid,
        seeds=seeds,
        search=search,
        from_best=from_best,
        scheduler=scheduler,
        resources=resources,
        max_concurrent=max_concurrent,
        retries=retries,
        description=description,
        save_weights=save_weights,
        tensorboard=tensorboard,
        oracle_selection=oracle_selection,
        restarts=restarts,
        source=source,
        raw=raw,
    )
    _validate_trials(spec, fail)
    return spec


def _grid_value(key: str, value: Any, path: str, fail, known: set[str]) -> dict[str, Any]:
    """Normalise one grid entry into the trial fields it sets."""
    if key == VARIANT:
        if not isinstance(value, dict) or not isinstance(value.get("name"), str) or not NAME_RE.match(value["name"]):
            raise fail(
                path,
                "be a mapping {name: NAME, field: value, ...} with a name of letters, digits, '-', '_' or '.'",
                value,
            )
        out = {_VARIANT_KEY: value["name"]}
        for field_name, v in value.items():
            if field_name == "name":
                continue
            if field_name not in known or field_name == "seed":
                raise fail(
                    f"{path}.{field_name}",
                    "be a known trial field other than seed (see `adx trial fields`)",
                    field_name,
                )
            out[field_name] = v
        return out
    if key == "dependence":
        if isinstance(value, dict):
            extra = set(value) - {"mechanism", "level"}
            if extra or "level" not in value:
                raise fail(path, "be a number or a mapping {mechanism: copula|scm, level: number}", value)
            return {"dependence_mechanism": value.get("mechanism", "copula"), "dependence": value["level"]}
        return {"dependence": value}
    if key == "support":
        if isinstance(value, dict):
            extra = set(value) - {"name", "param", "options"}
            if extra or "name" not in value:
                raise fail(path, "be a support name or a mapping {name: ..., param: number, options: {...}}", value)
            out = {"support": value["name"], "support_param": value.get("param")}
            return out | ({"support_options": value["options"]} if "options" in value else {})
        return {"support": value}
    if key in ("decoder", "encoder") and isinstance(value, dict):
        if set(value) - {"name", "options"} or "name" not in value:
            raise fail(path, f"be a {key} name or a mapping {{name: package.module:name, options: {{...}}}}", value)
        return {key: value["name"], f"{key}_options": value.get("options")}
    if key.endswith("_options") and (value is None or isinstance(value, dict)):
        return {key: value}
    if isinstance(value, (dict, list)):
        raise fail(path, f"be a single value of `{key}`", value)
    return {key: value}


def _parse_search(raw: Any, fields: set[str], fail, oracle: bool = False) -> SearchSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise fail("search", "be a mapping with metric, mode, n_trials, sampler and space", raw)
    for key in raw:
        if key not in SEARCH_KEYS:
            raise fail(f"search.{key}", f"be one of {list(SEARCH_KEYS)}", key)
    metric = raw.get("metric", "val_loss")
    if metric in ORACLE_METRICS and not oracle:
        raise fail(
            "search.metric",
            f"be a quantity computed without ground truth, one of {list(SEARCH_METRICS)} "
            f"({metric!r} needs the true latents or OOS images; set `oracle_selection: true` to select on it "
            "anyway, and the rows and tables will say so)",
            metric,
        )
    if metric not in SEARCH_METRICS + ORACLE_METRICS:
        raise fail("search.metric", f"be one of {list(SEARCH_METRICS)}", metric)
    mode = raw.get("mode", "min")
    if mode not in ("min", "max"):
        raise fail("search.mode", "be 'min' or 'max'", mode)
    n_trials = raw.get("n_trials", 10)
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise fail("search.n_trials", "be a positive integer", n_trials)
    sampler = raw.get("sampler", "tpe")
    if sampler not in SAMPLERS:
        raise fail("search.sampler", f"be one of {list(SAMPLERS)}", sampler)
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise fail("search.seed", "be an integer >= 0", seed)
    space_raw = raw.get("space")
    if not isinstance(space_raw, dict) or not space_raw:
        raise fail("search.space", "be a non-empty mapping of trial fields to distributions", space_raw)
    space: dict[str, dict[str, list]] = {}
    for key, dist in space_raw.items():
        path = f"search.space.{key}"
        if key not in fields or key == "seed":
            raise fail(path, "be a known trial field other than seed", key)
        if not isinstance(dist, dict) or len(dist) != 1:
            raise fail(path, f"be one distribution {{kind: [...]}} with kind in {list(DISTRIBUTIONS)}", dist)
        kind, args = next(iter(dist.items()))
        if kind not in DISTRIBUTIONS:
            raise fail(f"{path}.{kind}", f"be one of {list(DISTRIBUTIONS)}", kind)
        if kind == "choice":
            if not isinstance(args, list) or not args:
                raise fail(f"{path}.choice", "be a non-empty list", args)
        else:
            if not (isinstance(args, list) and len(args) == 2 and all(_is_number(a) for a in args)):
                raise fail(f"{path}.{kind}", "be a list [low, high] of two numbers", args)
            low, high = args
            if low > high:
                raise fail(f"{path}.{kind}", "have low <= high", args)
            if kind in ("loguniform", "logint") and low <= 0:
                raise fail(f"{path}.{kind}", "have low > 0 for a log scale", args)
            if kind in ("int", "logint") and not all(isinstance(a, int) for a in args):
                raise fail(f"{path}.{kind}", "have integer bounds", args)
        space[key] = {kind: list(args)}
    return SearchSpec(metric=metric, mode=mode, n_trials=n_trials, sampler=sampler, space=space, seed=seed)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _parse_from_best(raw: Any, fail) -> FromBest | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = {"sweep": raw}
    if not isinstance(raw, dict) or set(raw) - {"sweep", "match"} or not isinstance(raw.get("sweep"), str):
        raise fail("from_best", "be a sweep name or a mapping {sweep: NAME, match: [fields]}", raw)
    match = raw.get("match")
    if match is not None and (not isinstance(match, list) or not all(isinstance(m, str) for m in match)):
        raise fail("from_best.match", "be a list of trial field names", match)
    return FromBest(sweep=raw["sweep"], match=tuple(match) if match is not None else None)


def _parse_scheduler(raw: Any, fail) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or len(raw) != 1:
        raise fail("scheduler", f"be a mapping with one scheduler, one of {list(SCHEDULERS)}", raw)
    kind, args = next(iter(raw.items()))
    if kind not in SCHEDULERS:
        raise fail(f"scheduler.{kind}", f"be one of {list(SCHEDULERS)}", kind)
    args = args or {}
    if not isinstance(args, dict):
        raise fail(f"scheduler.{kind}", "be a mapping of options", args)
    out = {"kind": kind, "grace_steps": 500, "reduction_factor": 3}
    for key, value in args.items():
        if key not in ("grace_steps", "reduction_factor"):
            raise fail(f"scheduler.{kind}.{key}", "be one of ['grace_steps', 'reduction_factor']", key)
        if isinstance(value, bool) or not isinstance(value, int) or value < (2 if key == "reduction_factor" else 1):
            low = 2 if key == "reduction_factor" else 1
            raise fail(f"scheduler.{kind}.{key}", f"be an integer >= {low}", value)
        out[key] = value
    return out


def _parse_restarts(raw: Any, fail) -> RestartsSpec:
    if raw is None:
        return RestartsSpec()
    if not isinstance(raw, dict):
        raise fail("restarts", "be a mapping {k: count, select_at: step or null} or {k: count, rungs: [steps]}", raw)
    for key in raw:
        if key not in ("k", "select_at", "rungs"):
            raise fail(f"restarts.{key}", "be one of ['k', 'select_at', 'rungs']", key)
    k, select_at, rungs = raw.get("k", 1), raw.get("select_at"), raw.get("rungs")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise fail("restarts.k", "be an integer >= 1", k)
    if select_at is not None and (isinstance(select_at, bool) or not isinstance(select_at, int) or select_at < 1):
        raise fail("restarts.select_at", "be null or an integer >= 1", select_at)
    try:
        return RestartsSpec(k=k, select_at=select_at, rungs=rungs)
    except SpecError as exc:
        requirement = (exc.requirement or str(exc)).removeprefix("must ")
        raise fail(f"restarts.{exc.field}", requirement, show=False) from None


def _parse_resources(raw: Any, fail) -> dict[str, float]:
    if raw is None:
        return {"cpu": 1.0, "gpu": 0.0}
    if not isinstance(raw, dict):
        raise fail("resources", "be a mapping {cpu: number, gpu: number}", raw)
    out = {"cpu": 1.0, "gpu": 0.0}
    for key, value in raw.items():
        if key not in out:
            raise fail(f"resources.{key}", "be 'cpu' or 'gpu'", key)
        if not _is_number(value):
            raise fail(f"resources.{key}", "be a number", value)
        if key == "cpu" and value <= 0:
            raise fail("resources.cpu", "be > 0", value)
        if key == "gpu" and value < 0:
            raise fail("resources.gpu", "be >= 0", value)
        if key == "gpu" and value > 1 and value != int(value):
            raise fail("resources.gpu", "be a fraction <= 1 or a whole number of GPUs", value)
        out[key] = float(value)
    return out


def _validate_trials(spec: SweepSpec, fail) -> None:
    """Build every cell's TrialSpec (and the search bounds) so that a bad value is found
    before anything starts; re-address the error to the key that set the field."""
    cells = spec.cells()
    probes: list[dict[str, Any]] = [{}]
    if spec.search:
        for key, dist in spec.search.space.items():
            probes += [{key: a} for a in next(iter(dist.values()))]
    for cell in cells:
        for params in probes:
            try:
                spec.trial_spec(cell, spec.seeds[0], params)
            except SpecError as exc:
                raise readdress(spec, exc, cell, params) from None
            except Exception as exc:  # e.g. TypeError from an unexpected value
                raise fail(f"cell {cell.label}", f"build a valid trial ({exc})", show=False) from None
        trial = spec.trial_spec(cell, spec.seeds[0])
        if spec.grouped and trial.restart:
            raise fail(f"cell {cell.label}", "not set `restart` with restarts (k > 1): members set it", trial.restart)
        if spec.grouped or spec.restarts.schedule:
            try:
                spec.restarts.check(trial)
            except SpecError as exc:
                where = f" (cell {cell.label})" if len(cells) > 1 else ""
                raise SweepSpecError(f"{spec.source}: restarts.{exc.field}{where}: {exc.requirement}") from None


def key_path(spec: SweepSpec, field_name: str, cell: Cell, params: dict[str, Any] | None = None) -> str:
    """The key of the spec that set a trial field for a cell: ``search.space.F.kind``,
    ``grid.K (cell ...)``, ``fixed.F``, or ``F (the default; cell ...)``."""
    grid_fields = {f: k for k, values in spec.grid.items() for v in values for f in v}
    if params and field_name in params and spec.search is not None and field_name in spec.search.space:
        kind = next(iter(spec.search.space[field_name]))
        return f"search.space.{field_name}.{kind}"
    if field_name in grid_fields:
        return f"grid.{grid_fields[field_name]} (cell {cell.label})"
    if field_name in spec.fixed:
        return f"fixed.{field_name}"
    return f"{field_name or 'fixed'} (the default; cell {cell.label})"


def readdress(spec: SweepSpec, exc: SpecError, cell: Cell, params: dict[str, Any] | None = None) -> SweepSpecError:
    """A trial's ``SpecError`` as the spec's error: its file, the key that set the field,
    and what the field must be."""
    path = key_path(spec, exc.field or "", cell, params)
    return SweepSpecError(f"{spec.source}: {path}: {exc.requirement or exc}")


def spec_to_yaml(spec: SweepSpec) -> str:
    """The resolved spec as stored beside the results (``spec.yaml``): the spec as written,
    with every trial field the grid, a variant or a search does not set pinned in ``fixed``
    at the value it had when the sweep started, so a resume under a later version of the
    tool (other defaults) runs exactly what the first run ran."""
    raw = dict(spec.raw)
    defaults = {f.name: f.default for f in dataclass_fields(TrialSpec) if f.name != "seed"}
    raw["fixed"] = {**defaults, **(raw.get("fixed") or {})}
    return yaml.safe_dump(raw, sort_keys=False)


def uses_auto_amp(spec: SweepSpec) -> bool:
    """Whether any trial of ``spec`` leaves its precision to ``amp: auto``."""
    return any(spec.trial_spec(cell, spec.seeds[0]).amp == "auto" for cell in spec.cells())


def pin_amp(spec: SweepSpec, amp: bool) -> SweepSpec:
    """``spec`` with every ``amp: auto`` (in ``fixed``, a grid value or a variant) replaced by
    ``amp``: the precision a sweep decided at its start, stored with it so that a resume,
    on this machine or another, trains in the precision the sweep started with."""
    raw = copy.deepcopy(spec.raw)

    def pin(mapping: Any) -> None:
        if isinstance(mapping, dict) and mapping.get("amp") == "auto":
            mapping["amp"] = amp

    pin(raw.get("fixed"))
    for key, values in (raw.get("grid") or {}).items():
        if not isinstance(values, list):
            continue
        if key == "amp":
            raw["grid"][key] = [amp if v == "auto" else v for v in values]
        for value in values:
            pin(value)
    return parse_sweep_spec(raw, spec.source)
