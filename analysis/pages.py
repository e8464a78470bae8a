"""The generated blocks of the docs: what an ``adx`` command prints on the published results.

docs/RESULTS.md and the README keep their tables between cog markers (cogapp, as datasette
keeps its reference docs), each block naming the command that produces it::

    <!-- [[[cog show("adx results table mini --format md") ]]] -->
    ...what the command printed...
    <!-- [[[end]]] -->

``make docs`` runs every block again on ``results/published`` (``cog -r``);
``tests/test_generated_docs.py`` fails, naming the block, when a page differs from what its
commands print, so a page cannot drift from the data behind it.
"""

from __future__ import annotations

import io
import os
import shlex
from contextlib import redirect_stdout
from pathlib import Path

from additive.errors import AdxError

PUBLISHED = "results/published"
COLUMNS = "100"  # terminal tables are laid out for this width, whatever the terminal's


def adx(line: str) -> str:
    """Run ``adx ...`` in this process on the published folder (``--storage`` added where the
    line has none) and return what it printed."""
    from sweeps.cli import main

    argv = shlex.split(line)
    if not argv or argv[0] != "adx":
        raise AdxError(f"a generated block's command: must start with 'adx', but got {line!r}")
    argv = argv[1:]
    if "--storage" not in argv:
        argv += ["--storage", PUBLISHED]
    buf = io.StringIO()
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = COLUMNS
    try:
        with redirect_stdout(buf):
            rc = main(argv)
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    if rc:
        raise AdxError(f"{line}: exited with {rc}")
    return buf.getvalue().rstrip("\n")


def published() -> str:
    """The names of every sweep in the published folder, space-separated (for a block's command)."""
    return " ".join(sorted(p.name for p in Path(PUBLISHED).iterdir() if (p / "spec.yaml").exists()))


def block(line: str, head: int | None = None) -> str:
    """A command and its output as Markdown: a table printed as Markdown stays a table,
    anything else is shown as a code block under the command (its first ``head`` lines)."""
    out = adx(line)
    if head is not None:
        lines = out.splitlines()
        out = "\n".join(lines[:head] + ([f"... ({len(lines) - head} more lines)"] if len(lines) > head else []))
    shown = f"`{line}`" if "--storage" in line else f"`{line} --storage {PUBLISHED}`"
    if out.lstrip().startswith("|"):
        return f"{shown}:\n\n{out}"
    body = "\n".join(("    " + s) if s else "" for s in out.splitlines())
    return f"{shown}:\n\n{body}"


def show(line: str, head: int | None = None) -> None:
    """Inside a cog block: print ``block(line, head)``."""
    import cog  # type: ignore[import-not-found]  # cogapp, present while cog runs

    cog.outl(block(line, head))


IMAGES = "docs/img/published"  # where `make docs` writes the figures of the generated blocks


def figure(line: str, caption: str) -> str:
    """Run an ``adx results plot ... --out DIR`` line into ``IMAGES`` (PNG only) and return
    the Markdown of its images. With ``ADX_DOCS_CHECK`` set (the drift test) nothing is
    written: the links are checked against the command, the pixels are not."""
    import shutil
    import tempfile
    from pathlib import Path

    argv = shlex.split(line)
    if "--out" in argv:
        raise AdxError(f"a generated figure's command: must leave --out to the page, but got {line!r}")
    with tempfile.TemporaryDirectory(prefix="adx-docs-") as tmp:
        adx(f"{line} --out {tmp}")
        pngs = sorted(Path(tmp).glob("*.png"))
        if not os.environ.get("ADX_DOCS_CHECK"):
            Path(IMAGES).mkdir(parents=True, exist_ok=True)
            for png in pngs:
                shutil.copyfile(png, Path(IMAGES) / png.name)
    rel = os.path.relpath(IMAGES, "docs")
    images = "\n".join(f"![{caption}]({rel}/{png.name})" for png in pngs)
    return f"`{line} --storage {PUBLISHED} --out {IMAGES}`:\n\n{images}"


def show_figure(line: str, caption: str) -> None:
    """Inside a cog block: print ``figure(line, caption)``."""
    import cog  # type: ignore[import-not-found]

    cog.outl(figure(line, caption))


def show_text(text: str) -> None:
    """Inside a cog block: print a sentence built from the published rows."""
    import cog  # type: ignore[import-not-found]

    cog.outl(text)


def map_progress(name: str = "map") -> str:
    """Where the published map stands: restart groups done, per seed, and the seeds complete
    in every cell."""
    from sweeps.catalog import sweep_status

    st = sweep_status(PUBLISHED, name)
    seeds = st["seeds"]
    done = sum(v["done"] for v in seeds.values())
    planned = sum(v["planned"] for v in seeds.values())
    complete = [s for s, v in seeds.items() if v["done"] == v["planned"]]
    whole = f"seeds {complete[0]}-{complete[-1]} in every cell" if complete else "no seed in every cell yet"
    hours = st["pace"]["running_hours"] if st["pace"] else 0.0
    return (
        f"{done} of {planned} restart groups published ({whole}), from {hours:.1f} h of running"
        f" ({st['pace']['stretches'] if st['pace'] else 0} stretch(es))"
    )


PRESETS = ("smoke", "mini", "mini-block", "mini-k3", "map", "support", "dependence", "recipe", "tune",
           "tune-ablation", "paper", "paper-block", "map-paper")  # fmt: skip


NOT_RUN = ("tune", "tune-ablation", "paper", "paper-block", "map-paper")


def preset_table() -> str:
    """The README's table of presets: what each runs (its spec's description), how many
    trials, and, where its rows are published, the machine time its rows took and the
    hardware; elsewhere what the history says."""
    from pathlib import Path

    from sweeps.catalog import sweep_status
    from sweeps.spec import load_sweep_spec

    lines = [
        "| preset | what | trials | published rows: done, running time, hardware |",
        "|---|---|---|---|",
    ]
    for name in PRESETS:
        spec = load_sweep_spec(Path("sweeps/specs") / f"{name}.yaml")
        per = spec.search.n_trials if spec.search else 1
        units = len(spec.cells()) * len(spec.seeds) * per
        trials = f"{units} groups of {spec.restarts.k}" if spec.grouped else f"{units}"
        published = Path(PUBLISHED) / name / "spec.yaml"
        if published.exists():
            st = sweep_status(PUBLISHED, name)
            rows = _published_rows(name)
            hw = ", ".join(sorted({_short(h) for h in rows["hardware"].dropna()})) or "not recorded"
            pace = st["pace"]
            done = sum(v["done"] for v in st["seeds"].values())
            time = _duration(pace["running_hours"]) if pace else "-"
            parts = f" in {pace['stretches']} parts" if pace and pace["stretches"] > 1 else ""
            where = f"{done}/{units} done, {time}{parts}, {hw}"
        elif name in NOT_RUN:
            where = "not run to completion yet"
        else:
            where = "rows not published (earlier runs: docs/HISTORY.md)"
        lines.append(f"| `{name}` | {spec.description.rstrip('.')} | {trials} | {where} |")
    return "\n".join(lines)


def _published_rows(name: str):
    import pandas as pd

    return pd.read_parquet(f"{PUBLISHED}/{name}/_compacted/trials.parquet")


def _short(hardware: str) -> str:
    """``Intel(R) Xeon(R) Processor [amx_bf16 amx_tile ...]`` -> ``Intel Xeon, AMX``."""
    model, _, flags = hardware.partition(" [")
    model = model.replace("(R)", "").replace("(TM)", "").replace(" Processor", "").replace(" CPU", "").strip()
    if "amx_bf16" in flags:
        return f"{model}, AMX"
    if "avx512_bf16" in flags:
        return f"{model}, AVX512-BF16, no AMX"
    return model


def _duration(hours: float) -> str:
    minutes = round(hours * 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def draws_outside_band(dependence: float, widths: tuple[float, ...], draws: int = 200_000) -> str:
    """How many of ``draws`` latents of ScalarLatents' Gaussian copula at ``dependence``
    (seed 0) fall outside the diagonal band of each width: what the band's rejection removes
    from the full square's draws at that dependence."""
    import numpy as np

    from additive.latents import LatentSpace

    counts = []
    for width in widths:
        space = LatentSpace(
            dataset="scalar",
            support="diagonal_band",
            support_param=width,
            dependence_mechanism="copula",
            dependence=dependence,
        )
        z = space.sample_base(draws, np.random.default_rng(0))
        counts.append(f"{int((~space.in_shape(z)).sum()):,} outside the band of width {width:g}")
    return f"of {draws:,} draws of the copula at {dependence:g} (seed 0), " + " and ".join(counts)
