"""What every figure shares: matplotlib set up for paper-sized figures (Agg, small fonts),
the decoders' colours, and saving a figure as PNG and PDF or as PNG bytes."""

from __future__ import annotations

import io
from pathlib import Path

from additive.errors import AdxError

DECODER_COLOURS = {"additive": "#1b9e77", "monolithic": "#d95f02", "masked": "#7570b3"}


def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        raise AdxError("plots need matplotlib: pip install matplotlib") from None
    plt.rcParams.update(
        {
            "font.size": 9,
            "axes.titlesize": 9,
            "axes.labelsize": 9,
            "legend.fontsize": 8,
            "xtick.labelsize": 8,
            "ytick.labelsize": 8,
            "figure.dpi": 150,
            "savefig.bbox": "tight",
        }
    )
    return plt


def _colour(decoder: str) -> str:
    return DECODER_COLOURS.get(decoder, "#666666")


def _save(fig, out_dir: Path, stem: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "pdf"):
        path = out_dir / f"{stem}.{ext}"
        fig.savefig(path)
        paths.append(path)
    return paths


def figure_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
