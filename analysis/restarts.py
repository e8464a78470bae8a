"""Evidence for restarts: does the validation loss early in training tell which runs will
identify, and what would K initialisations selected at step s give, at what cost?

Input: full-budget runs of several initialisations per (condition, seed), from a sweep
with ``restarts: {k: K}`` and no ``select_at``, or with a grid over the trial field
``restart``. Member r of a restart group is exactly the run with ``restart = r``, and a
selected member continued past ``select_at`` is exactly its full run, so the outcome of
any ``restarts: {k, select_at}`` with k <= K is computed here, not simulated: the members
0..k-1, the lowest best-so-far validation loss at ``select_at`` (from the learning
curves), and that member's final identification.

A selected member continued past a rung is exactly its full run too (``Training.park``), so
any rung schedule ``restarts: {k, rungs}`` is replayed the same way (``replay``).
With ``subsets`` every choice of k of a group's members is raced, not only members
0..k-1, and each group counts the share of choices whose kept member identifies: members
are independent draws, so this estimates the same rate with less luck in the draw.

Two tables (``restart_evidence``):
- per evaluation step: the AUC of the validation loss at that step as a predictor of
  identification at the end (LMS ID >= 99), pooled over runs, and within seeds (the share
  of (identifying, failing) pairs of one seed that the validation loss orders correctly,
  which is what a selection among one seed's members needs);
- per (k, select_at): the share of (condition, seed) groups whose selected member
  identifies (Wilson 95% interval), its mean LMS ID, the share where any of the k members
  identifies (the most any selection could reach), and the cost in full runs.

With two or more schedules, ``paired_schedules`` compares each with the first on the same
groups (the discordant groups and an exact McNemar test).
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

import numpy as np
import pandas as pd

from additive.errors import AdxError
from additive.spec import RestartsSpec, TrialSpec
from analysis.columns import CONDITION, IDENTIFIED_LMS
from analysis.tables import format_rate

# Trial fields that do not make two runs different experiments.
_NOT_A_CONDITION = ("restart", "init_seed", "threads", "accelerator", "max_seconds", "max_memory_mb")


def _group_keys(df: pd.DataFrame) -> list[str]:
    spec_fields = [f.name for f in fields(TrialSpec) if f.name not in _NOT_A_CONDITION]
    return ["sweep", *[c for c in spec_fields if c in df.columns]]


def full_runs(trials: pd.DataFrame) -> pd.DataFrame:
    """Runs that trained the full budget (ok, not stopped at a selection step), one per
    (condition, seed, restart), with a ``group`` number per (condition, seed)."""
    runs = trials[(trials["status"] == "ok") & (trials["steps_done"] >= trials["steps"])].copy()
    if runs.empty:
        raise AdxError("no full-budget runs: restart evidence needs ok runs that trained every step")
    keys = _group_keys(runs)
    filled = runs[keys].astype(object).where(runs[keys].notna(), "-")
    runs["group"] = filled.groupby(keys, dropna=False, sort=True).ngroup()
    runs["identified"] = runs["lms_id"] >= IDENTIFIED_LMS
    duplicated = runs.duplicated(["group", "restart"])
    if duplicated.any():
        raise AdxError(
            f"{int(duplicated.sum())} runs repeat a (condition, seed, restart) already seen; analyse one sweep "
            "per condition"
        )
    return runs


def _val_at(curves: pd.DataFrame, runs: pd.DataFrame, steps: list[int]) -> pd.DataFrame:
    """Best-so-far validation loss of every run at every step in ``steps`` (rows: runs)."""
    out = pd.DataFrame(index=runs.index, columns=steps, dtype=float)
    by_trial = {key: g.sort_values("step") for key, g in curves.groupby(["sweep", "trial_id"])}
    for i, run in runs.iterrows():
        curve = by_trial.get((run["sweep"], run["trial_id"]))
        if curve is None:
            continue
        best = curve["val_loss"].cummin().to_numpy()
        at = curve["step"].to_numpy()
        for s in steps:
            j = np.searchsorted(at, s, side="right") - 1
            out.loc[i, s] = best[j] if j >= 0 else math.nan
    return out


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(a failing run has the higher validation loss than an identifying one); ties 1/2."""
    if len(pos) == 0 or len(neg) == 0:
        return math.nan
    greater = (neg[:, None] > pos[None, :]).sum() + 0.5 * (neg[:, None] == pos[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def auc_by_step(runs: pd.DataFrame, val: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for s in val.columns:
        v = val[s]
        ok = v.notna()
        pos, neg = v[ok & runs["identified"]].to_numpy(), v[ok & ~runs["identified"]].to_numpy()
        right, pairs = 0.0, 0
        for _, g in runs[ok].groupby("group"):
            gp, gn = v[g.index[g["identified"]]].to_numpy(), v[g.index[~g["identified"]]].to_numpy()
            if len(gp) and len(gn):
                right += _auc(gp, gn) * len(gp) * len(gn)
                pairs += len(gp) * len(gn)
        rows.append(
            {
                "step": int(s),
                "identifying": len(pos),
                "failing": len(neg),
                "AUC (pooled)": _auc(pos, neg),
                "AUC (within seed)": right / pairs if pairs else math.nan,
                "pairs within seed": pairs,
            }
        )
    return pd.DataFrame(rows)


def replay(
    runs: pd.DataFrame, val: pd.DataFrame, restarts: RestartsSpec, steps: int, subsets: bool = False
) -> dict[str, Any]:
    """What ``restarts`` gives on these full-budget runs, group by group: the members
    0..k-1, raced through the rungs on their best-so-far validation losses (``val``,
    rows: runs, columns: steps) exactly as ``additive.restarts`` races them, the kept
    member's final identification, and the cost in full runs. Groups that lack one of the
    k members are left out. ``subsets``: every choice of k of the group's members instead
    of members 0..k-1, each group counting the share of choices whose kept member
    identifies (members are independent draws of the initialisation, so this is the same
    expectation with less luck in which members a group happens to have)."""
    from itertools import combinations

    hits, anyone, lms, n = 0.0, 0.0, [], 0
    per_group: dict[int, float] = {}  # group -> its kept member identifies (a share with ``subsets``)
    for gid, g in runs.groupby("group"):
        members = g.sort_values("restart")
        if subsets:
            choices = list(combinations(range(len(members)), restarts.k))
        else:
            members = members[members["restart"] < restarts.k]
            if list(members["restart"]) != list(range(restarts.k)):
                continue  # this group lacks a member: it cannot say what k gives
            choices = [tuple(range(restarts.k))]
        if not choices:
            continue
        n += 1
        curves = val.loc[members.index]  # the group's best-so-far losses, looked up once
        picks = [p for p in (_race(curves, restarts, steps, list(c)) for c in choices) if p is not None]
        identified = members["identified"].to_numpy()
        per_group[int(gid)] = sum(bool(identified[p]) for p in picks) / len(choices)
        hits += per_group[int(gid)]
        anyone += sum(bool(identified[list(c)].any()) for c in choices) / len(choices)
        lms += [float(members["lms_id"].iloc[p]) for p in picks]
    return {
        "groups": n,
        "hits": hits if subsets else int(hits),
        "anyone": anyone if subsets else int(anyone),
        "lms": float(np.mean(lms)) if lms else math.nan,
        "cost": restarts.cost(steps),
        "per_group": per_group,
    }


def _rungs(restarts: RestartsSpec) -> str:
    """``2,000, 8,000`` (``end`` without rungs): a schedule's rungs as the tables print them."""
    return ", ".join(f"{s:,}" for s in restarts.schedule) or "end"


def _label(restarts: RestartsSpec) -> str:
    """``5 at 2,000, 8,000``: a schedule as the tables name it."""
    return f"{restarts.k} at {_rungs(restarts)}"


def paired_schedules(runs: pd.DataFrame, val: pd.DataFrame, schedules: list[RestartsSpec], steps: int) -> pd.DataFrame:
    """Each schedule against the first, on the groups both replay: the groups where both
    kept members identify, only this one's, only the first's, neither, and the exact
    McNemar test of the discordant groups (two-sided binomial at 1/2; p = 1 without any).
    Schedules judged on the same groups differ only in their discordant groups, which is
    what the rates' separate intervals do not show."""
    from scipy import stats

    if len(schedules) < 2:
        raise AdxError(f"a paired comparison needs at least 2 schedules, but got {len(schedules)}")
    reference = replay(runs, val, schedules[0], steps)["per_group"]
    rows = []
    for r in schedules[1:]:
        this = replay(runs, val, r, steps)["per_group"]
        shared = sorted(set(reference) & set(this))
        pairs = [(bool(reference[g]), bool(this[g])) for g in shared]
        only_this = sum(1 for a, b in pairs if b and not a)
        only_first = sum(1 for a, b in pairs if a and not b)
        discordant = only_this + only_first
        p = stats.binomtest(min(only_this, only_first), discordant, 0.5).pvalue if discordant else 1.0
        rows.append({
            "schedule": _label(r), "against": _label(schedules[0]), "groups": len(shared),
            "both identify": sum(1 for a, b in pairs if a and b), "only this one": only_this,
            "only the first": only_first, "neither": sum(1 for a, b in pairs if not a and not b),
            "p (exact McNemar)": round(min(1.0, float(p)), 3),
        })  # fmt: skip
    return pd.DataFrame(rows)


def replay_topup(runs: pd.DataFrame, val: pd.DataFrame, restarts: RestartsSpec, steps: int, rule) -> dict[str, Any]:
    """``replay`` of ``restarts`` followed by the top-up (``additive.restarts.TopUpRule``):
    per cell (a condition, over its seeds), the groups whose kept final validation loss lies
    above the cell's fence get members ``k .. max_members - 1`` (full runs from the evidence)
    and keep the one with the lowest final validation loss among them and the kept one.
    Ground truth is read only to count what the top-up changed."""
    keys = [c for c in _group_keys(runs) if c != "seed"]
    filled = runs[keys].astype(object).where(runs[keys].notna(), "-")
    cell_of = filled.groupby(keys, dropna=False, sort=True).ngroup()
    kept: dict[int, tuple[int, Any, pd.DataFrame]] = {}  # group -> (cell, kept row index, members)
    for gid, g in runs.groupby("group"):
        members = g.sort_values("restart")
        first = members[members["restart"] < restarts.k]
        if list(first["restart"]) != list(range(restarts.k)):
            continue
        pick = _race(val.loc[first.index], restarts, steps, list(range(restarts.k)))
        if pick is not None:
            kept[int(gid)] = (int(cell_of[first.index[0]]), first.index[pick], members)
    final = val[steps]
    hits_before = hits_after = topped = topped_hit = extra = gained = lost = 0
    by_cell: dict[int, dict[int, float]] = {}
    for gid, (cell, idx, _) in kept.items():
        by_cell.setdefault(cell, {})[gid] = float(final[idx])
    flagged = {gid for cells in by_cell.values() for gid in rule.flagged({str(g): v for g, v in cells.items()})}
    for gid, (_, idx, members) in kept.items():
        before = bool(runs.loc[idx, "identified"])
        hits_before += before
        if str(gid) in flagged:
            new = members[(members["restart"] >= restarts.k) & (members["restart"] < rule.max_members)]
            topped += 1
            topped_hit += before
            extra += len(new)
            candidates = [idx, *new.index]
            idx = min(candidates, key=lambda i: (float(final[i]), candidates.index(i)))
        after = bool(runs.loc[idx, "identified"])
        hits_after += after
        gained += after and not before
        lost += before and not after
    n = len(kept)
    return {"groups": n, "hits_before": hits_before, "hits_after": hits_after, "topped": topped,
            "topped_identified": topped_hit, "gained": gained, "lost": lost,
            "extra_cost": extra / n if n else math.nan}  # fmt: skip


def _race(curves: pd.DataFrame, restarts: RestartsSpec, steps: int, alive: list[int]) -> int | None:
    """The position (a row of the group's ``curves``) of the member that ``restarts`` keeps
    from ``alive``."""
    from additive.restarts import rank_restarts, select_restart

    if not restarts.schedule:
        column = curves[steps].to_numpy()
        pick = select_restart([_number(column[r]) for r in alive])
        return None if pick is None else alive[pick]
    for rung, keep in zip(restarts.schedule, restarts.survivors, strict=True):
        column = curves[rung].to_numpy()
        losses = [_number(column[r]) for r in alive]
        alive = [alive[j] for j in sorted(rank_restarts(losses)[:keep])]
    return alive[0] if alive else None


def _number(x: Any) -> float | None:
    return None if x is None or x != x else float(x)


def _row(
    restarts: RestartsSpec, outcome: dict[str, Any], subsets: bool, auc: dict[int, float] | None = None
) -> dict[str, Any]:
    """One table row; with ``subsets`` the counts are expected counts (``_expected``);
    with ``auc`` (step -> within-seed AUC) the AUC at each rung."""
    n = outcome["groups"]
    rate = _expected if subsets else format_rate
    row = {
        "k": restarts.k,
        "rungs": _rungs(restarts),
        "groups": n,
        "selected identifies": rate(outcome["hits"], n),
        "selected LMS ID": round(outcome["lms"], 2),
        "any member identifies": rate(outcome["anyone"], n),
        "cost (full runs)": round(outcome["cost"], 3),
    }
    if auc is not None and restarts.schedule:
        row["AUC at rungs (within seed)"] = ", ".join(_fmt_auc(auc.get(s, math.nan)) for s in restarts.schedule)
    return row


def _fmt_auc(x: float) -> str:
    return "-" if x != x else f"{x:.2f}"


# A rung where the within-seed AUC is below this orders a seed's members little better than a
# coin: the warning of `adx results restarts` (a late riser dropped there is dropped by luck).
NEAR_CHANCE_AUC = 0.75


def within_seed_auc(auc: pd.DataFrame) -> dict[int, float]:
    """Step -> within-seed AUC, from ``auc_by_step``'s table."""
    return {int(s): float(a) for s, a in zip(auc["step"], auc["AUC (within seed)"], strict=True)}


def chance_rungs(schedules: list[RestartsSpec], auc: dict[int, float]) -> list[str]:
    """One warning per rung of ``schedules`` where the within-seed AUC is below
    ``NEAR_CHANCE_AUC``."""
    out = []
    for r in schedules:
        for step in r.schedule:
            a = auc.get(step, math.nan)
            if a == a and a < NEAR_CHANCE_AUC:
                out.append(
                    f"Warning: schedule {r.k}:{','.join(map(str, r.schedule))} has a rung at step {step:,} where the "
                    f"within-seed AUC is {a:.2f} (below {NEAR_CHANCE_AUC}: near chance); members it drops there are "
                    "dropped by luck."
                )
    return out


def first_step_reaching(auc: dict[int, float], threshold: float) -> int | None:
    """The first evaluation step from which on the within-seed AUC stays >= ``threshold``
    (the rule's earliest rung); None if it never does."""
    steps = sorted(auc)
    for i, s in enumerate(steps):
        if all(auc[t] == auc[t] and auc[t] >= threshold for t in steps[i:]):
            return s
    return None


def _expected(hits: float, n: int) -> str:
    """An expected count of groups (averaged over choices of members): no binomial interval."""
    return f"{hits:.2f}/{n}"


def selection_table(
    runs: pd.DataFrame,
    val: pd.DataFrame,
    ks: list[int],
    select_ats: list[int | None],
    steps: int,
    subsets: bool = False,
) -> pd.DataFrame:
    """What ``restarts: {k, select_at}`` gives on these runs (module docstring)."""
    rows = []
    for k in ks:
        for at in select_ats if k > 1 else [None]:  # one member: nothing to select
            restarts = RestartsSpec(k=k, select_at=at if k > 1 else None)
            row = _row(restarts, replay(runs, val, restarts, steps, subsets), subsets)
            row.pop("rungs")
            rows.append({"k": k, "select_at": "end" if at is None else int(at), **row})
    return pd.DataFrame(rows)


def schedule_table(
    runs: pd.DataFrame,
    val: pd.DataFrame,
    schedules: list[RestartsSpec],
    steps: int,
    subsets: bool = False,
    auc: dict[int, float] | None = None,
    topup=None,
) -> pd.DataFrame:
    """What each rung schedule gives on these runs, one row per schedule (with ``auc``, the
    within-seed AUC at its rungs; with ``topup``, a TopUpRule, what the top-up adds)."""
    rows = []
    for r in schedules:
        row = _row(r, replay(runs, val, r, steps, subsets), subsets, auc)
        if topup is not None and r.k >= topup.max_members:  # nothing to add (adx sweep topup refuses it)
            row |= {f"topped up (to {topup.max_members})": "-", "of which identified already": "-",
                    "failures turned": "-", "identifications lost": "-",
                    "identifies after top-up": row["selected identifies"], "cost with top-up": row["cost (full runs)"]}  # fmt: skip
        elif topup is not None:
            t = replay_topup(runs, val, r, steps, topup)
            row |= {
                f"topped up (to {topup.max_members})": f"{t['topped']}/{t['groups']}",
                "of which identified already": t["topped_identified"],
                "failures turned": t["gained"],
                "identifications lost": t["lost"],
                "identifies after top-up": format_rate(t["hits_after"], t["groups"]),
                "cost with top-up": round(r.cost(steps) + t["extra_cost"], 3),
            }
        rows.append(row)
    return pd.DataFrame(rows)


def cheapest_schedules(
    runs: pd.DataFrame,
    val: pd.DataFrame,
    candidate_steps: list[int],
    steps: int,
    max_rungs: int = 3,
    last_rung_from: int | None = None,
    subsets: bool = False,
    auc: dict[int, float] | None = None,
    first_rung_from: int | None = None,
) -> pd.DataFrame:
    """Every schedule of k = 2..K members raced at up to ``max_rungs`` rungs chosen among
    ``candidate_steps`` (rungs past the one that leaves a single member are not counted),
    replayed on the groups that have all K members; for each number of groups whose kept
    member identifies, the cheapest schedule that reaches it (ties: fewer members, then
    earlier rungs). The last row is the cheapest schedule with the most hits any schedule
    reaches. ``last_rung_from``: only schedules that keep their one member at this step or
    later (where the validation loss is known to order the runs)."""
    from itertools import combinations

    k_max = int(runs.groupby("group")["restart"].nunique().max())
    complete = runs.groupby("group")["restart"].transform("nunique") == k_max
    runs, val = runs[complete], val[complete]  # every schedule judged on the same groups
    best: dict[int, tuple[float, int, tuple[int, ...], dict[str, Any], RestartsSpec]] = {}
    for k in range(2, k_max + 1):
        useful = max(1, math.ceil(math.log2(k)))
        for n_rungs in range(1, min(max_rungs, useful) + 1):
            for rungs in combinations(sorted(candidate_steps), n_rungs):
                if last_rung_from is not None and rungs[-1] < last_rung_from:
                    continue
                if first_rung_from is not None and rungs[0] < first_rung_from:
                    continue
                restarts = RestartsSpec(k=k, rungs=rungs)
                outcome = replay(runs, val, restarts, steps, subsets)
                key = (outcome["cost"], k, rungs)
                hits = outcome["hits"]
                if hits not in best or key < best[hits][:3]:
                    best[hits] = (*key, outcome, restarts)
    rows, cheapest = [], math.inf
    for hits in sorted(best, reverse=True):  # a schedule counts if nothing cheaper reaches more
        cost, _, _, outcome, restarts = best[hits]
        if cost < cheapest:
            rows.append(_row(restarts, outcome, subsets, auc))
            cheapest = cost
    return pd.DataFrame(rows[::-1])


def evidence_inputs(trials: pd.DataFrame, curves: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, int, list[int]]:
    """The full-budget runs, their best-so-far validation loss at every evaluation step
    (rows: runs), the budget in steps and the evaluation steps."""
    runs = full_runs(trials)
    budgets = sorted(runs["steps"].unique())
    if len(budgets) != 1:
        raise AdxError(f"runs of one training budget only, but got steps {budgets}")
    steps = int(budgets[0])
    evals = sorted(int(s) for s in curves["step"].unique() if s <= steps) if not curves.empty else []
    if not evals:
        raise AdxError("no learning curves for these runs")
    return runs, _val_at(curves, runs, evals), steps, evals


def check_steps(option: str, wanted: list[int], evals: list[int], steps: int) -> None:
    bad = [s for s in wanted if s not in evals or s >= steps]
    if bad:
        raise AdxError(f"{option}: must be evaluation steps below {steps} ({evals[:6]} ...), but got {bad}")


def restart_evidence(
    trials: pd.DataFrame,
    curves: pd.DataFrame,
    select_ats: list[int] | None = None,
    schedules: list[RestartsSpec] | None = None,
    cheapest: bool = False,
    last_rung_from: int | None = None,
    subsets: bool = False,
    min_auc: float | None = None,
    topup=None,
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The AUC table, the selection table and a note (module docstring). The selection
    table has a row per (k, select_at); with ``schedules`` a row per rung schedule instead;
    with ``cheapest`` the cheapest schedule for each number of groups its kept member
    identifies (``cheapest_schedules``, rungs among ``select_ats``). Given ``select_ats``, the
    AUC table has those steps only (the rungs' AUC and ``min_auc`` still read every evaluation)."""
    runs, val, steps, evals = evidence_inputs(trials, curves)
    wanted = select_ats or [s for s in evals if s < steps]
    check_steps("--select-at", wanted, evals, steps)
    for restarts in schedules or []:
        check_steps(f"--schedule {restarts.k}:{','.join(map(str, restarts.schedule))}", list(restarts.schedule),
                    evals, steps)  # fmt: skip
    k_max = int(runs.groupby("group")["restart"].nunique().max())
    too_many = [r.k for r in schedules or [] if r.k > k_max]
    if too_many:
        raise AdxError(f"--schedule: must race at most the {k_max} members each group has, but got k = {too_many}")
    auc = auc_by_step(runs, val)
    within = within_seed_auc(auc)  # every evaluation: the rungs and the --min-auc rule read all of them
    first_rung = None
    if min_auc is not None:
        first_rung = first_step_reaching(within, min_auc)
        if first_rung is None:
            raise AdxError(f"--min-auc: the within-seed AUC never stays >= {min_auc} on these runs: no rung qualifies")
    if select_ats:  # the AUC table shows the steps asked for; `within` above keeps every evaluation
        auc = auc[auc["step"].isin(select_ats)].reset_index(drop=True)
    if cheapest:
        table = cheapest_schedules(
            runs, val, wanted, steps, last_rung_from=last_rung_from, subsets=subsets, auc=within,
            first_rung_from=first_rung,
        )  # fmt: skip
    elif schedules:
        table = schedule_table(runs, val, schedules, steps, subsets, within, topup)
    else:
        table = selection_table(runs, val, list(range(1, k_max + 1)), [*wanted, None], steps, subsets)
    conditions = [c for c in CONDITION if c in runs and runs[c].nunique(dropna=False) > 1]
    seconds = (runs["train_seconds"] + runs["eval_seconds"].fillna(0)).median()
    note = (
        f"{len(runs)} full-budget runs in {runs['group'].nunique()} (condition, seed) groups"
        + (f" over {', '.join(conditions)}" if conditions else "")
        + f"; {steps} steps, a median {seconds:.0f} s of training and evaluation per run. Selection reads the "
        "best-so-far validation loss at each rung (select_at is one rung): the better half goes on, one member "
        "after the last rung; identification is LMS ID >= "
        f"{IDENTIFIED_LMS:g} at the end. 'any member identifies' is the most a selection could reach "
        "(it reads ground truth; it is a reference, not an estimator). Cost: training steps of a group in full "
        "runs, no member failing."
        + (
            " Averaged over every choice of k of a group's members: 'selected identifies' is the expected number "
            "of groups whose kept member identifies, not a count (no interval)."
            if subsets
            else ""
        )
        + (
            " Each row: the cheapest schedule (k <= the members per group, up to 3 rungs among the steps given"
            + (f", the last at step {last_rung_from} or later" if last_rung_from else "")
            + ") whose kept member identifies in that many groups."
            if cheapest
            else ""
        )
    )
    if topup is not None:
        note += (
            f" Top-up: per condition, a group whose kept final validation loss lies above "
            f"q3 + {topup.fence:g} x (q3 - q1) of its condition's kept losses (log10; conditions of at least "
            f"{topup.min_groups} groups) gets members up to {topup.max_members} (full runs from these runs) and keeps "
            "the lowest final validation loss among them and its kept member; 'of which identified already' reads "
            "ground truth to count the top-ups that were not needed, 'failures turned' the failed groups whose new "
            "kept member identifies, 'identifications lost' the identified groups whose new kept member fails."
        )
    if first_rung is not None:
        note += (
            f" The rule --min-auc {min_auc}: no rung before step {first_rung:,}, the first evaluation from which the "
            f"within-seed AUC stays >= {min_auc}."
        )
    if schedules:
        warnings = chance_rungs(schedules, within)
        if warnings:
            note += " " + " ".join(warnings)
    return auc, table, note
