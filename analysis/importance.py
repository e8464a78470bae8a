"""Which hyperparameters mattered: Optuna's importance evaluators over a sweep's rows.

``adx results importance NAME --metric M`` rebuilds, in memory, one Optuna study from the
rows (the swept or searched trial fields as parameters, ``M`` as the value) and ranks the
fields with an evaluator Optuna ships: fANOVA (a random forest's functional ANOVA,
the default), PED-ANOVA (the quantile of good trials against all) or the mean decrease in
impurity. It works for searched and grid sweeps alike: the parameters are the trial fields
that vary between the rows. Ground-truth metrics (``lms_id``, ``rmse_ood``, ...) are allowed:
this is analysis after the fact, never model selection.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import pandas as pd

from additive.errors import AdxError
from additive.spec import trial_field_names

EVALUATORS = ("fanova", "ped-anova", "mdi")
# Trial fields that are never hyperparameters: repetitions and execution.
NOT_PARAMETERS = ("seed", "init_seed", "restart", "batch_seed", "threads", "accelerator", "fault", "max_seconds",
                  "max_memory_mb")  # fmt: skip
HIGHER_IS_BETTER = ("lms_id", "lms_ood", "mcc_id")


def scored_rows(df: pd.DataFrame, per_run: bool = False) -> pd.DataFrame:
    """The rows importance is computed over: every trial that finished ok (every search
    trial, not only each study's best), a restart group by the member it kept (with
    ``per_run``, by every member that ran its full budget)."""
    if df.empty:
        return df
    from analysis.columns import name_plugins

    df = name_plugins(df)
    ok = df[df["status"] == "ok"]
    if "restarts" in ok and (ok["restarts"].fillna(1) > 1).any() and not per_run:
        grouped = ok["restarts"].fillna(1) > 1
        ok = ok[~grouped | ok["selected"].fillna(False).astype(bool)]
    return ok


def swept_fields(df: pd.DataFrame) -> list[str]:
    """The trial fields that take more than one value among ``df``'s rows."""
    out = []
    for name in trial_field_names():
        if name in NOT_PARAMETERS or name not in df:
            continue
        values = df[name].dropna()
        if values.astype(str).nunique() > 1:
            out.append(name)
    return out


def confounded(rows: pd.DataFrame, fields: list[str]) -> list[list[str]]:
    """Groups of ``fields`` that vary together over ``rows``: each field's value determines
    every other's and back (e.g. an ablation at each decoder's tuned settings, where the
    learning rate, weight decay and width follow the decoder). No evaluator can tell such
    fields apart; ranked separately, one effect would be split among them at random. Only
    fields whose values repeat (on average at least twice) count: two searched continuous
    fields take a new value in every row, and map one-to-one without telling anything."""
    codes = {f: pd.factorize(rows[f].astype(str))[0] for f in fields}
    repeated = {f for f in fields if 2 * (codes[f].max() + 1) <= len(rows)}
    groups, taken = [], set()
    for i, f in enumerate(fields):
        if f in taken or f not in repeated:
            continue
        group = [f]
        for g in fields[i + 1 :]:
            if g in taken or g not in repeated:
                continue
            pairs = pd.DataFrame({"a": codes[f], "b": codes[g]}).drop_duplicates()
            if pairs["a"].is_unique and pairs["b"].is_unique:  # a one-to-one map between their values
                group.append(g)
        taken.update(group)
        if len(group) > 1:
            groups.append(group)
    return groups


def _distribution(values: pd.Series):
    import optuna.distributions as od

    clean = values.dropna()
    if clean.map(lambda v: isinstance(v, bool)).any() or not pd.api.types.is_numeric_dtype(clean):
        return od.CategoricalDistribution(sorted(clean.astype(str).unique())), True
    low, high = float(clean.min()), float(clean.max())
    if pd.api.types.is_integer_dtype(clean):
        return od.IntDistribution(int(low), int(high), log=low > 0 and high / low >= 8), False
    return od.FloatDistribution(low, high, log=low > 0 and high / low >= 8), False


def evaluator(name: str, seed: int = 0):
    import optuna.importance as oi

    if name == "fanova":
        return oi.FanovaImportanceEvaluator(seed=seed)
    if name == "ped-anova":
        return oi.PedAnovaImportanceEvaluator()
    if name == "mdi":
        return oi.MeanDecreaseImpurityImportanceEvaluator(seed=seed)
    raise AdxError(f"--evaluator: must be one of {list(EVALUATORS)}, but got {name!r}")


def importance(
    df: pd.DataFrame,
    metric: str,
    method: str = "fanova",
    fields: list[str] | None = None,
    seed: int = 0,
    step: int | None = None,
) -> tuple[pd.DataFrame, str]:
    """The importance of each field for ``metric`` over ``df``'s rows, and a note that says
    how it was computed."""
    import warnings

    import optuna

    if metric not in df:
        raise AdxError(f"--metric: must be a result column, but got {metric!r}")
    rows = df[[isinstance(v, (int, float)) and math.isfinite(v) for v in df[metric]]]
    fields = fields or swept_fields(rows)
    unknown = [f for f in fields if f not in rows]
    if unknown:
        raise AdxError(f"--fields: must name trial fields, but got unknown {', '.join(unknown)}")
    if not fields:
        raise AdxError("no trial field varies between these rows: nothing to rank (a grid or a search sweeps some)")
    if len(rows) < 4:
        raise AdxError(f"importance needs at least 4 rows with {metric}, but got {len(rows)}")
    together = confounded(rows, fields)  # ranked as one field, under the first one's name
    fields = [f for f in fields if not any(f in group[1:] for group in together)]
    distributions, categorical = {}, set()
    for f in fields:
        distributions[f], is_cat = _distribution(rows[f])
        if is_cat:
            categorical.add(f)
    direction: Literal["maximize", "minimize"] = "maximize" if metric in HIGHER_IS_BETTER else "minimize"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=direction)
    for _, row in rows.iterrows():
        params: dict[str, Any] = {}
        for f in fields:
            value = row[f]
            params[f] = str(value) if f in categorical else (int(value) if isinstance(
                distributions[f], optuna.distributions.IntDistribution) else float(value))  # fmt: skip
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=float(row[metric])))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PED-ANOVA and fANOVA are marked experimental in some versions
        # sorted: Optuna 5.1's mean-decrease-in-impurity evaluator labels the importances of
        # `params` given in another order than its own (sorted) with the wrong names
        scores = optuna.importance.get_param_importances(
            study, evaluator=evaluator(method, seed), params=sorted(fields)
        )
    table = pd.DataFrame(
        {"field": list(scores), "importance": [round(float(v), 3) for v in scores.values()]},
    )
    for f in fields:
        if f not in scores:
            table.loc[len(table)] = [f, 0.0]
    table["values"] = [_values(rows[f]) for f in table["field"]]
    with_ = {group[0]: group[1:] for group in together}
    table["field"] = [f"{f} (with {', '.join(with_[f])})" if f in with_ else f for f in table["field"]]
    names = {"fanova": "fANOVA", "ped-anova": "PED-ANOVA", "mdi": "mean decrease in impurity"}
    note = (
        f"Importance of each field for {metric} ({direction}d) by Optuna's {names[method]} evaluator "
        f"(optuna.importance, normalised to sum to 1; seed {seed}) over {len(rows)} rows"
        + (f" (every trial that reached step {step}, at that step)" if step is not None else "")
        + ". "
        + "".join(
            f"{', '.join(group)} vary together over these rows (each determines the others), so they are "
            f"ranked as one field, {group[0]}: the rows cannot tell their effects apart. "
            for group in together
        )
        + "Ground-truth metrics are allowed here: this is analysis, never model selection."
    )
    return table, note


def _values(column: pd.Series) -> str:
    clean = column.dropna()
    numeric = pd.api.types.is_numeric_dtype(clean) and not pd.api.types.is_bool_dtype(clean)
    values = sorted(clean.unique()) if numeric else sorted(clean.astype(str).unique())
    shown = [f"{v:.3g}" if numeric else str(v) for v in values]
    return ", ".join(shown) if len(values) <= 4 else f"{len(values)} values, {shown[0]} to {shown[-1]}"


CURVE_METRICS = ("val_loss", "best_val_loss", "train_loss")


def at_step(trials: pd.DataFrame, curves: pd.DataFrame, metric: str, step: int) -> pd.DataFrame:
    """Every trial that reached ``step`` (``ok`` and ``stopped`` alike), with ``metric`` read
    off its learning curve there (``val_loss``: the best validation loss so far, what a
    scheduler's rung compares): a search whose scheduler stopped most trials early still
    ranks its fields on every trial, at one budget."""
    if metric not in CURVE_METRICS:
        raise AdxError(f"--at-step: ranks a learning-curve metric ({', '.join(CURVE_METRICS)}), but got {metric!r}")
    column = "best_val_loss" if metric == "val_loss" else metric
    points = curves[curves["step"] == step][["sweep", "trial_id", column]].rename(columns={column: "_at"})
    rows = trials[trials["status"].isin(("ok", "stopped"))].merge(points, on=["sweep", "trial_id"], how="inner")
    if rows.empty:
        raise AdxError(f"--at-step: no trial has a learning-curve point at step {step}")
    return rows.assign(**{metric: rows["_at"]}).drop(columns="_at")
