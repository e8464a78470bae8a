"""Ablation plots from the results (PNG and PDF, matplotlib, paper-sized).

- ``dependence``: LMS and OOS RMSE versus the dependence realised in the training latents
  (``realised_dependence``; the mechanism's level for older results without it), a line
  per decoder with s.e.m. error bars, a panel per support shape and mechanism.
- ``support``: box + strip plots per decoder for each support shape (and parameter):
  reconstruction MSE (log scale) ID vs OOS, and LMS (the paper's figure style).
- ``map``: identification rate per support x dependence cell and decoder, and the RMSE OOS
  ratio with its corrected test (``analysis.maps``).
- ``x``: a metric and the identification rate against a column of the user's choice
  (``--x``, ``analysis.axis``).

A figure that pools a condition column that varies says so in its title.
- ``curves``: validation loss against training step.
- ``extrapolation``: for one trial, images decoded from a latent grid spanning beyond the
  training support, with the support outlined on the latent plane.
- ``traversal``: each true factor moved alone; the predicted latents plotted.

``extrapolation`` and ``traversal`` need the trial's model: its saved weights
(``save_weights: true`` in the sweep) are loaded with ``weights_only=True``; without
them the trial is retrained from its row, which is deterministic given the seed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from additive.errors import AdxError
from analysis.figures import _colour, _plt, _save

KINDS = ("dependence", "support", "map", "x", "curves", "extrapolation", "traversal", "search")


# ----- dependence -------------------------------------------------------------------------
def dependence_figure(df: pd.DataFrame, per_run: bool = False):
    """LMS ID and RMSE OOS versus the realised dependence of each level (the mean over its
    trials of ``realised_dependence``: restricted to the support, the data's dependence is
    not the mechanism's level); None when the level does not vary."""
    from analysis.tables import select_models

    plt = _plt()
    ok = select_models(df, per_run)
    ok = ok[ok["status"] == "ok"]
    if ok.empty or ok["dependence"].nunique() < 2:
        return None
    realised = "realised_dependence" in ok and ok["realised_dependence"].notna().all()
    from analysis.axis import varying_conditions

    pooled = varying_conditions(ok, ["support", "dependence_mechanism", "dependence"])
    panels = sorted(ok.groupby(["support", "dependence_mechanism"]).groups)
    fig, axes = plt.subplots(2, len(panels), figsize=(3.2 * len(panels) + 0.5, 4.6), squeeze=False, sharex="col")
    for j, (support, mech) in enumerate(panels):
        sub = ok[(ok["support"] == support) & (ok["dependence_mechanism"] == mech)]
        for decoder, g in sub.groupby("decoder"):
            stats = (
                g.groupby("dependence")
                .agg(
                    lms=("lms_id", "mean"),
                    lms_sem=("lms_id", "sem"),
                    rmse=("rmse_ood", "mean"),
                    rmse_sem=("rmse_ood", "sem"),
                    x=("realised_dependence" if realised else "dependence", "mean"),
                )
                .reset_index()
            )
            kw = {"color": _colour(decoder), "marker": "o", "ms": 3, "capsize": 2, "label": decoder}
            axes[0, j].errorbar(stats["x"], stats["lms"], yerr=stats["lms_sem"], **kw)
            axes[1, j].errorbar(stats["x"], stats["rmse"], yerr=stats["rmse_sem"], **kw)
        axes[0, j].set_title(f"support {support}, {mech} dependence")
        axes[0, j].set_ylabel("LMS ID (0-100)")
        axes[0, j].set_ylim(-2, 102)
        axes[1, j].set_ylabel("RMSE OOS (pixels in [0, 1])")
        axes[1, j].set_xlabel("realised dependence (Spearman, training data)" if realised else "dependence level")
        axes[0, j].grid(alpha=0.3)
        axes[1, j].grid(alpha=0.3)
    axes[0, 0].legend(title="decoder")
    if pooled:
        fig.suptitle(f"pooled over {', '.join(pooled)} (use --x or --where to separate them)", fontsize=8)
    fig.tight_layout()
    return fig


# ----- support ----------------------------------------------------------------------------
def support_figure(df: pd.DataFrame, per_run: bool = False):
    """Box + strip plots per decoder and support: MSE ID vs OOS (log) and LMS ID."""
    from analysis.tables import select_models

    plt = _plt()
    ok = select_models(df, per_run)
    ok = ok[ok["status"] == "ok"]
    if ok.empty:
        return None
    from analysis.axis import varying_conditions
    from analysis.maps import support_label

    # one box per support shape and parameter (a band's widths are never pooled)
    ok = ok.assign(support=[support_label(a, b) for a, b in zip(ok["support"], ok["support_param"], strict=True)])
    supports = sorted(ok["support"].unique())
    decoders = sorted(ok["decoder"].unique())
    pooled = varying_conditions(ok, ["support", "support_param"])
    fig, axes = plt.subplots(1, 2, figsize=(max(6.5, 1.9 * len(supports) * len(decoders) / 2 + 3), 3.2))
    rng = np.random.default_rng(0)
    positions, labels = [], []
    width = 0.8 / (2 * len(decoders))
    for i, support in enumerate(supports):
        for k, decoder in enumerate(decoders):
            g = ok[(ok["support"] == support) & (ok["decoder"] == decoder)]
            for s, (col, hatch) in enumerate((("rmse_id", ""), ("rmse_ood", "//"))):
                values = (g[col].dropna() ** 2).to_numpy()
                pos = i + (2 * k + s - len(decoders) + 0.5) * width
                if len(values):
                    bp = axes[0].boxplot(
                        values, positions=[pos], widths=width * 0.9, patch_artist=True, showfliers=False
                    )
                    bp["boxes"][0].set(facecolor=_colour(decoder), alpha=0.35, hatch=hatch)
                    axes[0].scatter(
                        pos + rng.uniform(-width / 4, width / 4, len(values)),
                        values,
                        s=6,
                        color=_colour(decoder),
                        zorder=3,
                    )
            values = g["lms_id"].dropna().to_numpy()
            pos = i + (k - (len(decoders) - 1) / 2) * 0.8 / len(decoders)
            if len(values):
                bp = axes[1].boxplot(
                    values, positions=[pos], widths=0.6 / len(decoders), patch_artist=True, showfliers=False
                )
                bp["boxes"][0].set(facecolor=_colour(decoder), alpha=0.35)
                axes[1].scatter(
                    pos + rng.uniform(-0.05, 0.05, len(values)), values, s=6, color=_colour(decoder), zorder=3
                )
        positions.append(i)
        labels.append(support)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("reconstruction MSE (log scale)")
    axes[0].set_title("ID (plain) vs OOS (hatched)")
    axes[1].set_ylabel("LMS ID (0-100)")
    axes[1].set_ylim(-2, 102)
    axes[1].set_title("identifiability")
    for ax in axes:
        ax.set_xticks(positions)
        ax.set_xticklabels(labels, rotation=20)
        ax.set_xlabel("support shape")
        ax.grid(alpha=0.3, axis="y")
    handles = [plt.Rectangle((0, 0), 1, 1, color=_colour(d), alpha=0.5) for d in decoders]
    axes[1].legend(handles, decoders, title="decoder", loc="lower right")
    if pooled:
        fig.suptitle(f"pooled over {', '.join(pooled)} (use --x or --where to separate them)", fontsize=8)
    fig.tight_layout()
    return fig


# ----- curves -----------------------------------------------------------------------------
def curves_figure(trials: pd.DataFrame, curves: pd.DataFrame):
    plt = _plt()
    if curves.empty:
        return None
    merged = curves.merge(trials[["trial_id", "sweep", "decoder"]], on=["sweep", "trial_id"], how="left")
    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    for decoder, g in merged.groupby("decoder"):
        for _, t in g.groupby(["sweep", "trial_id"]):
            ax.plot(t["step"], t["val_loss"], color=_colour(decoder), alpha=0.25, lw=0.8)
        mean = g.groupby("step")["val_loss"].mean()
        ax.plot(mean.index, mean.values, color=_colour(decoder), lw=2, label=f"{decoder} (mean)")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("validation MSE (log scale)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


# ----- models of one trial ----------------------------------------------------------------
def pick_trial(df: pd.DataFrame, trial: str | None) -> pd.Series:
    """The row named by ``trial``, else the additive model with the lowest validation loss
    (a restart group's selected member: the one whose weights a sweep saves)."""
    from analysis.tables import select_models

    selected = select_models(df)
    ok = selected[selected["status"] == "ok"]
    if trial is not None:
        hit = df[df["trial_id"] == trial]
        if hit.empty:
            raise AdxError(f"--trial: no trial {trial!r} (trials: {', '.join(df['trial_id'].head(8))} ...)")
        return hit.iloc[0]
    if ok.empty:
        raise AdxError("no ok trial to draw")
    pool = ok[ok["decoder"] == "additive"] if (ok["decoder"] == "additive").any() else ok
    return pool.sort_values("val_loss").iloc[0]


def row_trial_fields(row: pd.Series) -> dict:
    """The trial fields of a results row (see ``sweeps.results.trial_fields_from_row``)."""
    from sweeps.results import trial_fields_from_row

    return trial_fields_from_row(row)


def trial_models(row: pd.Series, storage: str):
    """The trial's encoder and decoder, from the weights its sweep saved. Analysis never
    trains: without saved weights, an error names the command that makes them."""
    from additive.spec import TrialSpec
    from additive.train import load_models
    from sweeps.results import Storage, SweepFiles

    spec = TrialSpec.from_dict({**row_trial_fields(row), "accelerator": "cpu", "fault": "none"})
    store = Storage(storage)
    path = SweepFiles(store, row["sweep"]).weights_path(row["trial_id"])
    if not store.exists(path):
        raise AdxError(
            f"no saved weights for trial {row['trial_id']} of sweep {row['sweep']!r}: run the sweep with "
            f"`save_weights: true`, or train this trial again from its row and save its weights with "
            f"`adx trial retrain {row['sweep']} {row['trial_id']} --storage {storage}`"
        )
    if store.is_local:
        return spec, *load_models(spec, path)
    with tempfile.TemporaryDirectory(prefix="adx-weights-") as tmp:
        local = Path(tmp) / "weights.pt"
        with store.fs.open_input_file(path) as f:
            local.write_bytes(f.read())
        return spec, *load_models(spec, local)


def extrapolation_figure(row: pd.Series, storage: str, n: int = 7):
    """Images decoded from a latent grid beyond the support; support outlined."""
    import torch

    from additive.evaluate import encode, lms, recombined_codes, searches_partitions
    from additive.latents import HIGH, LOW
    from additive.render import render_balls

    plt = _plt()
    spec, encoder, decoder = trial_models(row, storage)
    space = spec.latent_space()
    # Vary the heights of balls 1 and 2 over a grid; other coordinates at their mean.
    z_ref = space.sample(2000, 0)
    grid = np.linspace(LOW, HIGH, n)
    ys = space.blocks
    y1, y2 = ys[0].stop - 1, ys[1].stop - 1
    zs = np.repeat(z_ref.mean(0, keepdims=True), n * n, 0)
    for i, a in enumerate(grid[::-1]):
        for j, b in enumerate(grid):
            zs[i * n + j, y1], zs[i * n + j, y2] = b, a
    if space.dataset == "block":  # keep x apart so the balls do not overlap
        zs[:, 0], zs[:, 2] = 0.25, 0.75
    # Codes come from in-support images, block by block (as for rmse_recombine), so the
    # picture tests the decoder's extrapolation, not the encoder's.
    z_test = space.sample(1000, 1)
    z_fit = space.sample(2000, 2)
    _, matched = lms(
        space,
        searches_partitions(space, spec.decoder, decoder),
        z_fit,
        encode(encoder, render_balls(z_fit, space, spec.image_size)),
        z_test,
        encode(encoder, render_balls(z_test, space, spec.image_size)),
    )
    codes, found = recombined_codes(encoder, space, zs.astype(np.float32), z_ref, matched, spec.image_size)
    with torch.no_grad():
        recon = decoder(torch.as_tensor(codes)).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    recon[~found] = 1.0  # no in-support carrier: left blank
    truth = render_balls(zs, space, spec.image_size).permute(0, 2, 3, 1).numpy()
    inside = space.contains(zs)
    fig, axes = plt.subplots(n, 2 * n + 1, figsize=(2 * n * 0.55 + 0.6, n * 0.6))
    for i in range(n):
        for j in range(n):
            k = i * n + j
            for off, img in ((0, truth[k]), (n + 1, recon[k])):
                ax = axes[i, j + off]
                ax.imshow(img, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                colour = "#1b9e77" if inside[k] else "#d62728"
                for spine in ax.spines.values():
                    spine.set(edgecolor=colour, linewidth=1.5)
        axes[i, n].axis("off")
    axes[0, n // 2].set_title("ground truth", fontsize=8)
    axes[0, n + 1 + n // 2].set_title(f"{row['decoder']} decoder ({row['trial_id']})", fontsize=8)
    fig.suptitle(
        "y1 left to right, y2 bottom to top; green frame: in support S, red: outside S (OOS)", fontsize=8, y=0.02
    )
    return fig


def traversal_figure(row: pd.Series, storage: str, n: int = 60):
    """Each true factor moved alone (others at the support's mean); predicted latents."""
    from additive.evaluate import encode
    from additive.latents import HIGH, LOW
    from additive.render import render_balls

    plt = _plt()
    spec, encoder, _ = trial_models(row, storage)
    space = spec.latent_space()
    base = space.sample(2000, 0).mean(0)
    if space.dataset == "block":
        base[0::2] = np.linspace(0.25, 0.75, space.n_objects)
    fig, axes = plt.subplots(1, space.d, figsize=(2.2 * space.d, 2.4), squeeze=False)
    values = np.linspace(LOW, HIGH, n)
    for f in range(space.d):
        zs = np.repeat(base[None], n, 0)
        zs[:, f] = values
        codes = encode(encoder, render_balls(zs, space, spec.image_size))
        ax = axes[0, f]
        for c in range(codes.shape[1]):
            ax.plot(values, codes[:, c], lw=1.2, label=f"ẑ{c + 1}")
        ax.set_xlabel(f"true z{f + 1} (screen units)")
        ax.set_title(f"move z{f + 1} alone")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("predicted latent")
    axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _search_figure(df: pd.DataFrame, names: list[str], storage: str):
    """The search figure of the searched sweeps among ``names`` (their stored specs say what
    was searched and for which metric)."""
    from analysis.searchplots import search_figure
    from sweeps.catalog import load_stored_spec
    from sweeps.results import Storage

    specs = [load_stored_spec(Storage(storage), name) for name in names]
    searched = [s for s in specs if s.search is not None]
    if not searched:
        raise AdxError(f"--kind search: {', '.join(names)} searched nothing (a spec with `search`)")
    search = searched[0].search
    assert search is not None
    return search_figure(df[df["sweep"].isin([s.name for s in searched])], search.space, search.metric, search.mode)


def make_plots(
    names: list[str],
    storage: str,
    kind: str,
    out: str,
    trial: str | None = None,
    strict: bool = False,
    per_run: bool = False,
    x: str | None = None,
    y: str = "lms_id",
) -> list[Path]:
    from analysis.load import load_curves, load_trials

    if x is not None and kind in ("support", "dependence"):
        kind = "x"  # the user's axis instead of the default one
    if kind not in KINDS:
        raise AdxError(f"--kind: must be one of {list(KINDS)}, but got {kind!r}")
    if kind == "x" and x is None:
        raise AdxError("--kind x: must be given --x COLUMN, e.g. --x support_param")
    df = load_trials(names, storage, strict=strict)
    if df.empty:
        raise AdxError(f"no trials in {', '.join(names)}")
    plt = _plt()
    if kind == "dependence":
        fig = dependence_figure(df, per_run)
        if fig is None:
            raise AdxError("--kind dependence: the dependence level does not vary in these results")
    elif kind == "support":
        fig = support_figure(df, per_run)
    elif kind == "map":
        from analysis.maps import map_figure

        fig = map_figure(df, per_run)
    elif kind == "x":
        from analysis.axis import axis_figure

        assert x is not None
        fig = axis_figure(df, x, y, per_run)
    elif kind == "search":
        fig = _search_figure(df, names, storage)
    elif kind == "curves":
        fig = curves_figure(df, load_curves(names, storage, strict=strict))
    elif kind == "extrapolation":
        fig = extrapolation_figure(pick_trial(df, trial), storage)
    else:
        fig = traversal_figure(pick_trial(df, trial), storage)
    if fig is None:
        raise AdxError(f"--kind {kind}: nothing to plot (no ok trials)")
    stem = kind if kind not in ("extrapolation", "traversal", "x") else f"{kind}-{pick_trial(df, trial)['trial_id']}"
    if kind == "x":
        stem = f"{y}-by-{x}"
    paths = _save(fig, Path(out), stem)
    plt.close(fig)
    return paths
