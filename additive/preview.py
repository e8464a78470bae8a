"""A look at a dataset: sample images and the latent support with ID and OOS points."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from additive.latents import HIGH, LOW, LatentSpace
from additive.render import render_balls


def preview_data(
    space: LatentSpace, out: str | Path, n_images: int = 16, image_size: int = 64, seed: int = 0, n_points: int = 1500
) -> Path:
    """Write a PNG (or PDF) with a grid of sample images and, per pair of balls, a
    scatter of their heights: in-support (ID) points and OOS points of CPE(S) \\ S."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z = space.sample(max(n_images, n_points), seed)
    oos = space.sample_oos(n_points // 2, seed + 1)
    images = render_balls(z[:n_images], space, image_size).permute(0, 2, 3, 1).numpy()
    cols = int(np.ceil(np.sqrt(n_images)))
    rows = int(np.ceil(n_images / cols))
    fig = plt.figure(figsize=(4 + 2.2 * cols * 0.6 + 4, 4.2), constrained_layout=True)
    grid = fig.add_gridspec(rows, cols + 4)
    for i in range(n_images):
        ax = fig.add_subplot(grid[i // cols, i % cols])
        ax.imshow(images[i], interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
    ax = fig.add_subplot(grid[:, cols:])
    y_id, y_oos = space.heights(z), space.heights(oos)
    ax.scatter(y_id[:, 0], y_id[:, 1], s=3, alpha=0.5, label=f"ID (in S), n={len(z)}", color="tab:blue")
    if len(oos):
        ax.scatter(y_oos[:, 0], y_oos[:, 1], s=3, alpha=0.5, label=f"OOS (CPE(S) \\ S), n={len(oos)}", color="tab:red")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.add_patch(matplotlib.patches.Rectangle((LOW, LOW), HIGH - LOW, HIGH - LOW, fill=False, ls="--", color="grey"))
    ax.set_xlabel("height of ball 1, y1 (screen units)")
    ax.set_ylabel("height of ball 2, y2 (screen units)")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=8, markerscale=4)
    title = (
        f"{space.dataset} latents, support {space.support}, "
        f"{space.dependence_mechanism} dependence {space.dependence:g}"
    )
    fig.suptitle(title, fontsize=11)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
