"""``adx results ...``: query, SQL, tables, plots and reports over Parquet results."""

from __future__ import annotations

import argparse
import sys
import textwrap
import warnings

from additive.errors import AdxError

QUERY_FORMATS = ("table", "csv", "json", "md", "parquet")


def add_results_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="cmd", metavar="{query,sql,table,compare,plot,report,restarts,importance}")
    sub.required = True

    def common(p: argparse.ArgumentParser, many: bool = True) -> None:
        p.add_argument("names", nargs="+" if many else None, metavar="NAME", help="sweep name(s)")
        p.add_argument("--storage", default="results", help="results root: a folder or a URI (default: ./results)")
        p.add_argument("--strict", action="store_true", help="a damaged results file is an error, not a warning")

    def estimator(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--per-run",
            action="store_true",
            help="every run that trained the full budget (the single-run estimator), not each restart group's "
            "selected member",
        )

    q = sub.add_parser("query", help="trial rows, filtered")
    common(q)
    q.add_argument(
        "--where",
        default=None,
        help="a row filter, e.g. \"decoder == 'additive' and lms_id > 90\" "
        "(columns, constants, comparisons, in [...], is None, and/or/not)",
    )
    q.add_argument(
        "--columns",
        default=None,
        help="comma-separated columns, or 'all' (default: identity, varying conditions and metrics)",
    )
    q.add_argument("--format", default="table", choices=QUERY_FORMATS)
    q.add_argument("--out", default=None, help="output file (required for parquet)")

    s = sub.add_parser("sql", help="SQL (DuckDB) over the tables `trials` and `curves`")
    s.add_argument("statement")
    s.add_argument("names", nargs="+", metavar="NAME")
    s.add_argument("--storage", default="results")
    s.add_argument("--strict", action="store_true")
    s.add_argument("--format", default="table", choices=QUERY_FORMATS[:4])

    t = sub.add_parser("table", help="the identifiability / extrapolation table (paper's Table 1 layout)")
    common(t)
    t.add_argument("--by", default=None, help="comma-separated condition columns (default: those that vary)")
    t.add_argument("--format", default="terminal", help="terminal, md, latex or csv")
    t.add_argument("--where", default=None)
    estimator(t)

    c = sub.add_parser("compare", help="paired differences between decoders per condition (additive - monolithic)")
    common(c)
    c.add_argument("--by", default=None)
    c.add_argument(
        "--baseline",
        default=None,
        help="compare every other decoder against this one (a built-in name or a plugin's readable name); "
        "with --across, a value of that column",
    )
    c.add_argument(
        "--across",
        default="decoder",
        help="the column whose values are compared, seed by seed (default: decoder); e.g. --across sweep "
        "--baseline B compares the same cells and seeds of two sweeps, each decoder on its own",
    )
    c.add_argument("--format", default="terminal", help="terminal, md, latex or csv")
    c.add_argument("--where", default=None)
    estimator(c)

    p = sub.add_parser("plot", help="ablation plots (PNG and PDF)")
    common(p)
    p.add_argument(
        "--kind",
        default=None,
        help="dependence, support, map, x, curves, extrapolation, traversal or search (x with --x)",
    )
    p.add_argument("--x", default=None, help="plot against this column, e.g. support_param (one point per value)")
    p.add_argument("--y", default="lms_id", help="with --x: the metric (default lms_id; also rmse_ood, ...)")
    p.add_argument("--out", default="plots", help="output folder (default: ./plots)")
    p.add_argument("--trial", default=None, help="trial id for extrapolation / traversal (default: best additive)")
    estimator(p)

    e = sub.add_parser(
        "restarts",
        help="evidence for restarts: how well the validation loss at each step predicts identification, and "
        "what k initialisations selected at a step give (from full-budget runs)",
    )
    common(e)
    e.add_argument(
        "--select-at",
        default=None,
        help="comma-separated steps: where to select, and the AUC table's rows (default: every evaluation)",
    )
    e.add_argument(
        "--schedule",
        action="append",
        default=[],
        metavar="K:S1,S2,...",
        help="replay K members raced at these rungs (repeatable), e.g. 8:2000,4000,8000",
    )
    e.add_argument(
        "--cheapest",
        action="store_true",
        help="the cheapest schedule (K members, up to 3 rungs among --select-at) for each identification count",
    )
    e.add_argument(
        "--last-rung-from",
        type=int,
        default=None,
        metavar="STEP",
        help="with --cheapest: only schedules that keep their one member at this step or later",
    )
    e.add_argument(
        "--all-subsets",
        action="store_true",
        help="replay every choice of K of a group's members, not only members 0..K-1: the expected number of "
        "groups whose kept member identifies, with less luck in which members a group has",
    )
    e.add_argument(
        "--min-auc",
        type=float,
        default=None,
        metavar="A",
        help="with --cheapest: no rung before the first evaluation from which the within-seed AUC stays >= A "
        "(a rung where the validation loss orders a seed's members near chance drops late risers by luck)",
    )
    e.add_argument(
        "--topup",
        type=int,
        default=None,
        metavar="M",
        help="with --schedule: replay the top-up too (a group whose kept validation loss stands out in its "
        "condition gets members up to M, the lowest validation loss kept; adx sweep topup)",
    )
    e.add_argument("--format", default="terminal", help="terminal, md, latex or csv")
    e.add_argument("--where", default=None)

    im = sub.add_parser(
        "importance",
        help="which swept or searched fields mattered for a metric (Optuna's importance evaluators over the rows; "
        "ground-truth metrics allowed: analysis, not selection)",
    )
    common(im)
    im.add_argument(
        "--metric",
        required=True,
        help="a result column, e.g. val_loss, lms_id, rmse_ood (ground-truth metrics are allowed: this is analysis, "
        "never model selection)",
    )
    im.add_argument("--evaluator", default="fanova", help="fanova (default), ped-anova or mdi")
    im.add_argument("--fields", default=None, help="comma-separated trial fields (default: those that vary)")
    im.add_argument("--seed", type=int, default=0, help="the evaluator's random seed (fanova, mdi)")
    im.add_argument(
        "--at-step",
        type=int,
        default=None,
        metavar="STEP",
        help="rank a learning-curve metric (val_loss: best so far) at this step, over every trial that reached it, "
        "stopped ones included (a search whose scheduler stopped most trials)",
    )
    im.add_argument("--format", default="terminal", help="terminal, md, latex or csv")
    im.add_argument("--where", default=None)
    estimator(im)

    r = sub.add_parser("report", help="one self-contained HTML report")
    common(r)
    r.add_argument("-o", "--out", default="report.html")
    estimator(r)


def _emit_warnings(caught) -> None:
    for w in caught:
        print(f"Warning: {w.message}", file=sys.stderr)


def run_results_command(args: argparse.Namespace) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return _run(args)
        finally:
            _emit_warnings(caught)


def _split(text: str | None) -> list[str] | None:
    return [c.strip() for c in text.split(",") if c.strip()] if text else None


def _run(args: argparse.Namespace) -> int:
    from analysis import load, tables

    if args.cmd == "query":
        df = load.load_trials(args.names, args.storage, args.where, args.strict)
        cols = _split(args.columns)
        if cols == ["all"]:
            cols = None
        elif cols is None and args.format == "table":
            cols = load.default_columns(df)
        if cols:
            unknown = [c for c in cols if c not in df.columns]
            if unknown:
                raise AdxError(f"--columns: must name result columns, but got unknown {', '.join(unknown)}")
            df = df[cols]
        return _write_frame(df, args.format, args.out)
    if args.cmd == "sql":
        return _write_frame(load.sql(args.statement, args.names, args.storage, args.strict), args.format, None)
    if args.cmd in ("table", "compare"):
        df = load.load_trials(args.names, args.storage, args.where, args.strict)
        if args.cmd == "table":
            table, note = tables.results_table(df, _split(args.by), args.per_run)
        else:
            table = tables.paired_comparison(
                df, _split(args.by), args.baseline, per_run=args.per_run, across=args.across
            )
            pairs = "(seed, restart) pairs" if args.per_run else "seeds"
            note = tables.estimator_note(df, args.per_run) + (
                f" Each {args.across} minus its baseline over {pairs} matched within each condition; 95% t interval; "
                "paired t-test; p_holm: the p-value adjusted (Holm) over the conditions of the table, one family "
                "per comparison and metric."
            )
        if args.cmd == "table":
            print(tables.format_results_table(table, args.format))
        else:
            print(tables.format_table(table, args.format))
        if args.format == "terminal":
            print(textwrap.fill(note, tables.terminal_width()))
        elif args.format == "md":  # the note as a paragraph under the table
            print()
            print(note)
        return 0
    if args.cmd == "restarts":
        from additive.restarts import TopUpRule
        from analysis.restarts import restart_evidence

        df = load.load_trials(args.names, args.storage, args.where, args.strict)
        curves = load.load_curves(args.names, args.storage, args.strict)
        steps = _split(args.select_at)
        try:
            select_ats = [int(x) for x in steps] if steps else None
        except ValueError:
            raise AdxError(f"--select-at: must be comma-separated steps, but got {args.select_at!r}") from None
        schedules = [_schedule(text) for text in args.schedule]
        auc, table, note = restart_evidence(
            df, curves, select_ats, schedules, args.cheapest, args.last_rung_from, args.all_subsets, args.min_auc,
            None if args.topup is None else TopUpRule(max_members=args.topup),
        )  # fmt: skip
        fmt = "md" if args.format == "terminal" else args.format
        print(tables.format_table(auc.round(3), args.format if args.format != "terminal" else "terminal"))
        print()
        print(tables.format_table(table, args.format))
        if len(schedules) >= 2 and not args.all_subsets and not args.cheapest:
            from analysis.restarts import evidence_inputs, paired_schedules

            runs, val, budget, _ = evidence_inputs(df, curves)
            print()
            print(tables.format_table(paired_schedules(runs, val, schedules, budget), args.format))
        if fmt == "md":
            print()
            print(textwrap.fill(note, tables.terminal_width()))
        return 0
    if args.cmd == "importance":
        from analysis.importance import importance, scored_rows

        trials = load.load_trials(args.names, args.storage, args.where, args.strict)
        if args.at_step is not None:
            from analysis.columns import name_plugins
            from analysis.importance import at_step

            curves = load.load_curves(args.names, args.storage, args.strict)
            df = at_step(name_plugins(trials), curves, args.metric, args.at_step)
        else:
            df = scored_rows(trials, args.per_run)
        table, note = importance(df, args.metric, args.evaluator, _split(args.fields), args.seed, args.at_step)
        print(tables.format_table(table, args.format))
        if args.format in ("terminal", "md"):
            print()
            print(textwrap.fill(note, tables.terminal_width()))
        return 0
    if args.cmd == "plot":
        from analysis.plots import make_plots

        kind = args.kind or ("x" if args.x else None)
        if kind is None:
            raise AdxError(
                "--kind: must be given (dependence, support, map, x, curves, extrapolation, traversal, search)"
            )
        paths = make_plots(
            args.names, args.storage, kind, args.out, args.trial, args.strict, args.per_run, args.x, args.y
        )
        for path in paths:
            print(path)
        return 0
    from analysis.report import write_report

    print(write_report(args.names, args.storage, args.out, args.strict, args.per_run))
    return 0


def _schedule(text: str):
    """``K:S1,S2,...`` as a ``RestartsSpec`` with those rungs."""
    from additive.errors import SpecError
    from additive.spec import RestartsSpec

    k, _, rungs = text.partition(":")
    try:
        return RestartsSpec(k=int(k), rungs=tuple(int(s) for s in rungs.split(",")))
    except (ValueError, SpecError):
        raise AdxError(f"--schedule: must be K:S1,S2,... (e.g. 8:2000,4000,8000), but got {text!r}") from None


def _write_frame(df, fmt: str, out: str | None) -> int:
    if fmt == "parquet":
        if not out:
            raise AdxError("--format parquet: must be given --out FILE")
        df.to_parquet(out, index=False)
        print(out)
        return 0
    if fmt == "csv":
        text = df.to_csv(index=False)
    elif fmt == "md":
        from analysis.tables import format_table

        text = format_table(df, "md")
    elif fmt == "json":
        text = df.to_json(orient="records", date_format="iso", indent=1)
    else:
        import pandas as pd

        from analysis.tables import terminal_width
        from sweeps.progress import first_line

        if "error" in df:  # a terminal table shows an error's first line; csv and json keep it whole
            df = df.assign(error=[None if e is None or e != e else first_line(e, 80) for e in df["error"]])

        with pd.option_context("display.max_columns", None, "display.width", terminal_width(), "display.max_rows", 500):
            text = df.to_string(index=False, line_width=terminal_width()) if len(df) else "(no rows)"
    if out:
        with open(out, "w") as f:
            f.write(text)
        print(out)
    else:
        print(text)
    return 0
