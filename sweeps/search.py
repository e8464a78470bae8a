"""One Ray Tune searcher for the whole sweep: grid cells x seeds x per-cell Optuna.

Design (see docs/DESIGN.md): Ray Tune refuses ``grid_search`` inside ``OptunaSearch``,
and a Tuner per cell run one after another leaves nodes idle while the last trials of a
cell finish. So a single Tuner runs every trial of the sweep, fed by ``SweepSearcher``:
it hands out the remaining grid trials and, for a sweep with ``search``, asks the Optuna
study of a (cell, seed) for the next point, round-robin over the studies, so trials of
all cells run side by side and the cluster stays busy. Each study is kept in an RDB
storage (SQLite in the sweep folder by default) and a resumed sweep continues it.
"""

from __future__ import annotations

import zlib
from collections import deque
from typing import Any

import yaml
from ray.tune.search import Searcher

from additive.errors import AdxError
from sweeps.results import Storage, SweepFiles
from sweeps.spec import ORACLE_METRICS, Cell, SweepSpec, parse_sweep_spec


def make_trial_id(cell: Cell, seed: int, number: int | None = None) -> str:
    base = f"{cell.id}-s{seed}"
    return base if number is None else f"{base}-t{number:03d}"


def group_outcomes(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per trial id (a restart group's id for its members), the row that stands for it:
    the selected member, else any member (which then says how the group failed)."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        gid = row.get("restart_group") or row["trial_id"]
        if gid not in out or (row.get("selected") and not out[gid].get("selected")):
            out[gid] = row
    return out


def study_name(sweep: str, cell: Cell, seed: int) -> str:
    return f"{sweep}/{cell.id}/s{seed}"


def _distributions(space: dict[str, dict[str, list]]):
    import optuna.distributions as od

    out: dict[str, od.BaseDistribution] = {}
    for key, dist in space.items():
        kind, args = next(iter(dist.items()))
        if kind == "loguniform":
            out[key] = od.FloatDistribution(float(args[0]), float(args[1]), log=True)
        elif kind == "uniform":
            out[key] = od.FloatDistribution(float(args[0]), float(args[1]))
        elif kind == "int":
            out[key] = od.IntDistribution(int(args[0]), int(args[1]))
        elif kind == "logint":
            out[key] = od.IntDistribution(int(args[0]), int(args[1]), log=True)
        else:
            out[key] = od.CategoricalDistribution(list(args))
    return out


def _config(
    spec: SweepSpec,
    cell: Cell,
    seed: int,
    params: dict[str, Any],
    tid: str,
    number: int | None,
    weights: dict | None,
    plugin_paths: list[str] | None = None,
) -> dict:
    return {
        "weights": weights,
        "plugin_paths": plugin_paths or [],
        "restarts": spec.restarts.to_dict() if spec.grouped else None,
        "trial_id": tid,
        "cell": cell.label,
        "cell_index": cell.index,
        "variant": cell.variant,
        "search_number": number,
        "selected_by": spec.search.metric if spec.search else None,
        "spec": spec.trial_spec(cell, seed, params).to_dict(),
    }


class SweepSearcher(Searcher):
    """Hands out every trial still to run in this sweep (see module docstring)."""

    def __init__(
        self,
        spec: SweepSpec,
        done_ids: set[str],
        best_params: dict[int, dict[str, Any]] | None = None,
        optuna_storage: str | None = None,
        done_rows: dict[str, dict[str, Any]] | None = None,
        weights: dict[str, str] | None = None,
        plugin_paths: list[str] | None = None,
    ):
        metric = spec.search.metric if spec.search else "val_loss"
        mode = spec.search.mode if spec.search else "min"
        super().__init__(metric=metric, mode=mode)
        self.spec = spec
        self.weights = weights  # {"storage": URI, "sweep": name} where trials save their weights
        self.plugin_paths = plugin_paths or []  # folders the trials put on sys.path (sweeps.plugins)
        self.best_params = best_params or {}
        self.queue: deque[dict] = deque()
        self.studies: dict[tuple[int, int], Any] = {}
        self.remaining: dict[tuple[int, int], int] = {}
        self.live: dict[str, tuple[tuple[int, int], int]] = {}
        self.cells = {c.index: c for c in spec.cells()}
        if spec.search is None:
            for seed in spec.seeds:
                for cell in self.cells.values():
                    tid = make_trial_id(cell, seed)
                    if tid not in done_ids:
                        params = self.best_params.get(cell.index, {})
                        self.queue.append(_config(spec, cell, seed, params, tid, None, self.weights))
        else:
            self._open_studies(done_ids, optuna_storage, done_rows or {})
        self._order = deque(self.remaining)

    @property
    def n_todo(self) -> int:
        return len(self.queue) + sum(self.remaining.values())

    def _open_studies(self, done_ids: set[str], storage: str | None, done_rows: dict[str, dict]) -> None:
        import optuna
        from optuna.trial import TrialState

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        search = self.spec.search
        assert search is not None
        self.distributions = _distributions(search.space)
        for seed in self.spec.seeds:
            for cell in self.cells.values():
                name = study_name(self.spec.name, cell, seed)
                sampler_seed = zlib.crc32(name.encode()) + search.seed
                sampler = (
                    optuna.samplers.TPESampler(seed=sampler_seed, constant_liar=True)
                    if search.sampler == "tpe"
                    else optuna.samplers.RandomSampler(seed=sampler_seed)
                )
                study = optuna.create_study(
                    study_name=name,
                    storage=storage,
                    sampler=sampler,
                    direction="minimize" if search.mode == "min" else "maximize",
                    load_if_exists=True,
                )
                # Trials left running by a killed driver: finish them from the rows on disk.
                for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
                    tid = t.user_attrs.get("trial_id")
                    row = done_rows.get(tid) if isinstance(tid, str) else None
                    value = row.get(search.metric) if row else None
                    if row and row.get("status") == "ok" and value is not None and value == value:
                        study.tell(t.number, value)
                    else:
                        study.tell(t.number, state=TrialState.FAIL)
                prefix = make_trial_id(cell, seed) + "-t"
                done = sum(1 for d in done_ids if d.startswith(prefix))
                key = (cell.index, seed)
                self.studies[key] = study
                self.remaining[key] = max(search.n_trials - done, 0)

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True

    # The sweep's state lives in its rows and Optuna storage, not in Tune checkpoints.
    def save(self, checkpoint_path: str) -> None:
        return None

    def restore(self, checkpoint_path: str) -> None:
        return None

    def suggest(self, trial_id: str) -> dict | None:
        if self.queue:
            return {**self.queue.popleft(), "plugin_paths": self.plugin_paths}
        for _ in range(len(self._order)):
            key = self._order[0]
            self._order.rotate(-1)
            if self.remaining.get(key, 0) > 0:
                self.remaining[key] -= 1
                study = self.studies[key]
                trial = study.ask(self.distributions)
                cell, seed = self.cells[key[0]], key[1]
                tid = make_trial_id(cell, seed, trial.number)
                trial.set_user_attr("trial_id", tid)
                self.live[trial_id] = (key, trial.number)
                params = {**self.best_params.get(cell.index, {}), **trial.params}
                return _config(self.spec, cell, seed, params, tid, trial.number, self.weights, self.plugin_paths)
        return Searcher.FINISHED  # type: ignore[return-value]  # Tune's sentinel string

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id not in self.live:
            return
        from optuna.trial import TrialState

        key, number = self.live.pop(trial_id)
        study = self.studies[key]
        value = (result or {}).get(self.metric)
        status = (result or {}).get("status")
        if error or value is None or value != value:
            study.tell(number, state=TrialState.FAIL)
        elif status == "ok":
            study.tell(number, float(value))
        else:  # stopped early by the scheduler, or diverged
            study.tell(number, state=TrialState.PRUNED if status in (None, "stopped") else TrialState.FAIL)


# ----- from_best --------------------------------------------------------------------------
def resolve_from_best(spec: SweepSpec, storage: Storage) -> dict[int, dict[str, Any]]:
    """Per cell, the searched fields of the best ok trial of the earlier sweep."""
    if spec.from_best is None:
        return {}
    earlier = SweepFiles(storage, spec.from_best.sweep)
    if not earlier.exists():
        raise AdxError(f"{spec.source}: from_best: no sweep {spec.from_best.sweep!r} in {storage.uri}")
    old = parse_sweep_spec(yaml.safe_load(storage.read_text(earlier.spec_path)), earlier.spec_path)
    if old.search is None:
        raise AdxError(f"{spec.source}: from_best: sweep {old.name!r} has no `search` to take the best of")
    if old.search.metric in ORACLE_METRICS and not spec.oracle_selection:
        raise AdxError(
            f"{spec.source}: from_best: sweep {old.name!r} selected on {old.search.metric!r}, which needs ground "
            "truth; set `oracle_selection: true` in this spec to take its best anyway"
        )
    metric, sign = old.search.metric, (1 if old.search.mode == "min" else -1)
    rows = [r for r in earlier.read_trials() if r["status"] == "ok" and r.get(metric) is not None]
    keys = (
        list(spec.from_best.match)
        if spec.from_best.match is not None
        else [f for f in {f for values in old.grid.values() for v in values for f in v} if not f.startswith("__")]
    )
    out: dict[int, dict[str, Any]] = {}
    for cell in spec.cells():
        target = spec.trial_spec(cell, spec.seeds[0]).to_dict()
        matches = [r for r in rows if all(r.get(k) == target.get(k) for k in keys)]
        if not matches:
            raise AdxError(
                f"{spec.source}: from_best: no ok trial of sweep {old.name!r} matches cell {cell.label} on {keys}"
            )
        best = min(matches, key=lambda r: sign * r[metric])
        out[cell.index] = {k: best[k] for k in old.search.space}
    return out
