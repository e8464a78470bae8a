"""Evidence for restarts: does the validation loss early in training tell which runs will
identify, and what would K initialisations selected at step s give, at what cost?

Input: full-budget runs of several initialisations per (condition, seed), from a sweep
with ``restarts: {k: K}`` and no ``select_at``, or with a grid over the trial field
``restart``. Member r of a restart group is exactly the run with ``restart = r``, and a
selected member continued past ``select_at`` is exactly its full run, so the outcome of
any ``restarts: {k, select_at}`` with k <= K is computed here, not simulated: the members
0..k-1, the lowest best-so-far validation loss at ``select_at`` (from the learning
curves), and that member's final identification.

Two tables (``restart_evidence``):
- per evaluation step: the AUC of the validation loss at that step as a predictor of
  identification at the end (LMS ID >= 99), pooled over runs, and within seeds (the share
  of (identifying, failing) pairs of one seed that the validation loss orders correctly,
  which is what a selection among one seed's members needs);
- per (k, select_at): the share of (condition, seed) groups whose selected member
  identifies (Wilson 95% interval), its mean LMS ID, the share where any of the k members
  identifies (the most any selection could reach), and the cost in full runs.
"""

from __future__ import annotations

import math
from dataclasses import fields

import numpy as np
import pandas as pd

from additive.errors import AdxError
from additive.spec import RestartsSpec, TrialSpec
from analysis.tables import CONDITION, IDENTIFIED_LMS, format_rate

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


def selection_table(
    runs: pd.DataFrame, val: pd.DataFrame, ks: list[int], select_ats: list[int | None], steps: int
) -> pd.DataFrame:
    """What ``restarts: {k, select_at}`` gives on these runs (module docstring)."""
    from additive.restarts import select_restart

    rows = []
    for k in ks:
        for at in select_ats if k > 1 else [None]:  # one member: nothing to select
            column = steps if at is None else at
            chosen, anyone, n = [], 0, 0
            for _, g in runs.groupby("group"):
                members = g[g["restart"] < k].sort_values("restart")
                if len(members) < k or list(members["restart"]) != list(range(k)):
                    continue  # this group lacks a member: it cannot say what k gives
                n += 1
                losses = [val.loc[i, column] for i in members.index]
                pick = select_restart([None if x != x else float(x) for x in losses])
                if pick is None:
                    continue
                chosen.append(members.iloc[pick])
                anyone += bool(members["identified"].any())
            picked = pd.DataFrame(chosen)
            hits = int(picked["identified"].sum()) if len(picked) else 0
            cost = RestartsSpec(k=k, select_at=at if k > 1 else None).cost(steps)
            rows.append(
                {
                    "k": k,
                    "select_at": "end" if at is None else int(at),
                    "groups": n,
                    "selected identifies": format_rate(hits, n),
                    "selected LMS ID": round(float(picked["lms_id"].mean()), 2) if len(picked) else math.nan,
                    "any member identifies": format_rate(anyone, n),
                    "cost (full runs)": round(cost, 3),
                }
            )
    return pd.DataFrame(rows)


def restart_evidence(
    trials: pd.DataFrame, curves: pd.DataFrame, select_ats: list[int] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The AUC table, the selection table and a note (module docstring)."""
    runs = full_runs(trials)
    budgets = sorted(runs["steps"].unique())
    if len(budgets) != 1:
        raise AdxError(f"runs of one training budget only, but got steps {budgets}")
    steps = int(budgets[0])
    evals = sorted(int(s) for s in curves["step"].unique() if s <= steps) if not curves.empty else []
    if not evals:
        raise AdxError("no learning curves for these runs")
    wanted = select_ats or [s for s in evals if s < steps]
    bad = [s for s in wanted if s not in evals or s >= steps]
    if bad:
        raise AdxError(f"--select-at: must be evaluation steps below {steps} ({evals[:6]} ...), but got {bad}")
    val = _val_at(curves, runs, sorted(set(evals)))
    k_max = int(runs.groupby("group")["restart"].nunique().max())
    auc = auc_by_step(runs, val)
    table = selection_table(runs, val, list(range(1, k_max + 1)), [*wanted, None], steps)
    conditions = [c for c in CONDITION if c in runs and runs[c].nunique(dropna=False) > 1]
    seconds = (runs["train_seconds"] + runs["eval_seconds"].fillna(0)).median()
    note = (
        f"{len(runs)} full-budget runs in {runs['group'].nunique()} (condition, seed) groups"
        + (f" over {', '.join(conditions)}" if conditions else "")
        + f"; {steps} steps, a median {seconds:.0f} s of training and evaluation per run. Selection reads the "
        "best-so-far validation loss at select_at; identification is LMS ID >= "
        f"{IDENTIFIED_LMS:g} at the end. 'any member identifies' is the most a selection could reach "
        "(it reads ground truth; it is a reference, not an estimator)."
    )
    return auc, table, note
