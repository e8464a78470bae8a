"""``adx sweep topup NAME``: more members for the restart groups whose kept validation loss
stands out from their cell's other groups (``additive.restarts.TopUpRule``).

A group whose members all stopped in a worse minimum shows it in its validation loss, with
no ground truth: its kept loss lies above the fence of its cell's kept losses. After a
sweep's groups finish, such a group gets members ``n .. max_members - 1``, each trained to
the full budget (member r initialises as in any group: ``TrialSpec.restart``), and the group
keeps the member with the lowest validation loss among its full-budget members. The rule is
read off the first ``k`` members of every group (the sweep as it ran), so a top-up stopped
part-way and run again flags the same groups; a group's file is rewritten, whole and
atomically, only once all its new members have trained. ``topup.json`` beside the rows
records the rule and the groups it topped up.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, TextIO

from additive.errors import AdxError
from additive.restarts import TopUpRule, select_restart
from sweeps.results import CURVE_SCHEMA, Storage, SweepFiles
from sweeps.spec import SweepSpec
from sweeps.writer import full_budget


@dataclass(frozen=True)
class TopUp:
    """One group to top up: its new members, its kept validation loss and its cell's fence."""

    group: str
    cell_index: int
    seed: int
    members: tuple[int, ...]
    kept_val_loss: float
    fence: float


def plan(spec: SweepSpec, rows: list[dict[str, Any]], rule: TopUpRule) -> tuple[list[TopUp], dict[int, float | None]]:
    """The groups the rule tops up (with the members each still needs) and each cell's
    fence (None: too few groups)."""
    if not spec.grouped:
        raise AdxError(f"sweep {spec.name!r}: a top-up needs restart groups (`restarts: {{k: 2 or more}}`)")
    k = spec.restarts.k
    if rule.max_members <= k:
        raise AdxError(f"--max-members: must exceed the groups' {k} members, but got {rule.max_members}")
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r.get("restart_group") or r["trial_id"], []).append(r)
    kept: dict[int, dict[str, float]] = {}
    for gid, members in groups.items():
        first = [m for m in members if (m.get("restart") or 0) < k and full_budget(m)]
        losses = [m["val_loss"] for m in first]
        pick = select_restart(losses)
        if pick is not None:
            kept.setdefault(members[0]["cell_index"], {})[gid] = float(losses[pick])
    out, fences = [], {}
    for cell, by_group in sorted(kept.items()):
        fences[cell] = rule.upper_fence(list(by_group.values()))
        for gid, fence in sorted(rule.flagged(by_group).items()):
            have = {m.get("restart") or 0 for m in groups[gid]}
            new = tuple(r for r in range(rule.max_members) if r not in have)
            if new:
                out.append(TopUp(gid, cell, groups[gid][0]["seed"], new, by_group[gid], fence))
    return out, fences


def run_topup(
    name: str,
    storage: str = "results",
    rule: TopUpRule | None = None,
    address: str | None = None,
    out: TextIO | None = sys.stderr,
    num_cpus: int | None = None,
    dry_run: bool = False,
) -> list[TopUp]:
    """Plan the top-up of sweep ``name`` and run it (module docstring); return the plan."""
    from sweeps.catalog import load_stored_spec
    from sweeps.engine import _leave_the_jobs_folder, _tune_environment, _tuner, check_resources, init_ray
    from sweeps.lock import SweepLock
    from sweeps.progress import Progress
    from sweeps.results import git_commit, versions
    from sweeps.search import _config
    from sweeps.writer import ResultWriter

    rule = rule or TopUpRule()
    _tune_environment()
    store = Storage(storage)
    spec = load_stored_spec(store, name)
    files = SweepFiles(store, name)
    notify = (lambda line: print(line, file=out, flush=True)) if out else None
    with SweepLock(files, wait=True, notify=notify):
        rows = files.read_trials()
        todo, fences = plan(spec, rows, rule)
        if out:
            shown = ", ".join(f"c{c:03d} {'-' if f is None else f'{f:.3g}'}" for c, f in fences.items())
            print(
                f"[{name}] top-up rule: fence q3 + {rule.fence:g} x (q3 - q1) of each cell's kept log10 validation "
                f"losses (cells of at least {rule.min_groups} groups), up to {rule.max_members} members; fences: "
                f"{shown}",
                file=out,
            )
            for t in todo:
                print(
                    f"[{name}]   {t.group}: kept val loss {t.kept_val_loss:.3g} > {t.fence:.3g}; members "
                    f"{', '.join(map(str, t.members))} to train",
                    file=out,
                )
            print(f"[{name}] {len(todo)} group(s) to top up, {sum(len(t.members) for t in todo)} full runs", file=out)
        if dry_run or not todo:
            return todo
        cells = {c.index: c for c in spec.cells()}
        by_group: dict[str, dict[str, Any]] = {}
        for t in todo:
            members = [r for r in rows if (r.get("restart_group") or r["trial_id"]) == t.group]
            curves = [c for c in files_curves(files) if c["trial_id"].startswith(t.group + "-r")]
            by_group[t.group] = {"rows": members, "curves": curves}
        configs = []
        for t in todo:
            config = _config(spec, cells[t.cell_index], t.seed, {}, t.group, None, None)
            config["topup"] = {"members": list(t.members)}
            configs.append(config)
        init_ray(address, num_cpus, [])
        check_resources(spec, joined=address is not None, out=out)
        progress = Progress(name, sum(len(t.members) for t in todo), 0, out, 10.0, group_size=1)
        writer = ResultWriter(files, progress, {"git_commit": git_commit(), "versions": versions()}, None, by_group)
        _leave_the_jobs_folder()
        resources = {"cpu": spec.resources["cpu"], "gpu": spec.resources["gpu"]}
        ray_dir = files.dir + "/_ray" if store.is_local else tempfile.mkdtemp(prefix="adx-ray-")
        started = time.strftime("%Y%m%d-%H%M%S")
        _tuner(spec, _Queue(configs), None, resources, ray_dir, f"topup-{started}", len(configs), writer).fit()
        if writer.write_error is not None:
            raise writer.write_error
        written: set[str] = writer.written  # type: ignore[attr-defined]  # the Tune callback's, built in __new__
        record = {
            "rule": dataclasses.asdict(rule),
            "topped_up": [dataclasses.asdict(t) for t in todo if t.group in written],
        }
        store.write_bytes(files.dir + "/topup.json", (json.dumps(record, indent=1) + "\n").encode())
        files.compact()
        if out:
            print(progress.line(), file=out, flush=True)
    return todo


def files_curves(files: SweepFiles) -> list[dict[str, Any]]:
    """Every curve row of a sweep (compacted and per-group files)."""
    from sweeps.compaction import read_folder

    contents = read_folder(files.storage, files.curves_dir, files.compacted_curves)
    out = [] if contents.compacted is None else contents.compacted.to_pylist()
    for path in contents.unlisted:
        table = files._read(path, CURVE_SCHEMA, warn=False)
        if table is not None:
            out += table.to_pylist()
    return out


class _Queue:
    """A Ray Tune searcher that hands out the given configs, then says it is finished."""

    def __new__(cls, configs: list[dict[str, Any]]):
        from ray.tune.search import Searcher

        class _Searcher(Searcher):
            def __init__(self) -> None:
                super().__init__(metric="val_loss", mode="min")
                self.queue = deque(configs)

            def suggest(self, trial_id: str):
                return self.queue.popleft() if self.queue else Searcher.FINISHED

            def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
                return None

        return _Searcher()
