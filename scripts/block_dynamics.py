"""How an additive decoder's blocks take the balls during training (a diagnostic).

Trains one trial exactly as ``adx trial run`` does (same fields, same trajectory) and, at
every evaluation, prints for each learned block how well it predicts each ball's (x, y)
(R^2 of a 10-nearest-neighbour regression from the block's code, fitted on 2,000 validation
images and scored on 1,000 others), which ball the block draws (the share of its image's
variation along ball 1's colour, of the two balls' colours) and the matched R^2 (the mean R^2
over the better pairing of blocks with balls; near 1 once the blocks have separated). Uses the
ground-truth latents, so it is for understanding a run, never for choosing one.

    python scripts/block_dynamics.py --set dataset=block --set support=no_overlap ... --set seed=12

Fields are those of ``adx trial fields``; ``eval_every`` sets how often it prints (evaluating
does not change the trajectory of a model without BatchNorm).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
import yaml
from sklearn.neighbors import KNeighborsRegressor

from additive.metrics import _hungarian_mean
from additive.render import COLORS
from additive.spec import TrialSpec
from additive.train import run_trial


def knn_r2(codes: np.ndarray, target: np.ndarray, n_fit: int = 2000) -> np.ndarray:
    """R^2 per target column of a 10-NN regression from standardised codes (fit, then score on the rest)."""
    x = (codes - codes.mean(0)) / (codes.std(0) + 1e-9)
    pred = KNeighborsRegressor(10).fit(x[:n_fit], target[:n_fit]).predict(x[n_fit:])
    rest = target[n_fit:]
    return 1 - ((pred - rest) ** 2).mean(0) / rest.var(0)


def matched_r2(r2: np.ndarray) -> float:
    """Mean R^2 over the better pairing of blocks with balls (the Hungarian matching LMS uses);
    ``r2[k, j]``: ball j from block k."""
    return _hungarian_mean(r2)[0]


def colour_share(image: torch.Tensor) -> float:
    """Share of a block image's variation (over images) along ball 1's colour, of balls 1 and 2."""
    directions = 1 - torch.tensor(COLORS[:2], dtype=torch.float32) / 255.0  # what each ball removes from white
    v = (image - image.mean(0, keepdim=True)).permute(0, 2, 3, 1).reshape(-1, 3)
    coef = torch.linalg.lstsq(directions.T, v.T).solution
    energy = (coef**2).mean(1)
    return float(energy[0] / energy.sum())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a trial field")
    parser.add_argument("--images", type=int, default=3000, help="validation images to probe (fit on the first 2,000)")
    args = parser.parse_args(argv)
    values = {}
    for item in args.set:
        key, sep, text = item.partition("=")
        if not sep:
            parser.error(f"--set: must be FIELD=VALUE, but got {item!r}")
        values[key.strip()] = yaml.safe_load(text)
    spec = TrialSpec.from_dict(values)
    if not 2000 < args.images <= spec.val_size:
        parser.error(f"--images: must be in (2000, {spec.val_size}] (the validation set), but got {args.images}")
    space = spec.latent_space()
    if spec.decoder != "additive" or space.n_objects != 2:
        parser.error(f"needs an additive decoder and two balls, but got {spec.decoder!r} with {space.n_objects}")
    b = space.block_size
    print("step  val_loss  " + "  ".join(f"block{k}: R2 ball1 ball2 draws_ball1" for k in range(2)) + "  matched_R2")

    def observe(step, encoder, decoder, data):
        x = data.val.float_images(0, args.images)
        z = data.val.z[: len(x)].cpu().numpy()
        codes = encoder(x)
        images = decoder.block_images(codes)
        val = float(((sum(images) - x) ** 2).mean())  # the additive decoder's output, not decoded again
        cells, table = [], np.zeros((2, 2))
        for k in range(2):
            r2 = knn_r2(codes[:, k * b : (k + 1) * b].cpu().numpy(), z)
            table[k] = r2[:b].mean(), r2[b:].mean()
            cells.append(f"{table[k, 0]:5.2f} {table[k, 1]:5.2f} {colour_share(images[k]):5.2f}")
        print(f"{step:5d}  {val:.5f}  " + "     ".join(cells) + f"     {matched_r2(table):5.3f}", flush=True)

    run_trial(spec, observe=observe)
    return 0


if __name__ == "__main__":
    sys.exit(main())
