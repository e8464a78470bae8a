"""Evaluate a trained encoder / decoder pair: reconstruction, LMS, extrapolation.

Metric names are the columns of the results table:
- ``rmse_id`` / ``rmse_ood``: reconstruction RMSE on the ID test set / the OOS set.
- ``lms_id`` / ``lms_ood``: LMS_Spear (scalar blocks) or LMS_tree (vector blocks; with
  partition search for monolithic decoders) on the ID test set / the OOS set.
- ``mcc_id``: Pearson MCC on the ID test set.
- ``rmse_recombine``: Cartesian-product extrapolation measured without relying on the
  encoder generalising OOS (see ``rmse_recombine``); it uses the ground-truth block
  matching of the LMS step, so it is a diagnostic, never a model-selection criterion.
  ``recombine_count`` is the number of OOS points it could use.
- ``realised_dependence``: the dependence actually present in the training latents (see
  ``realised_dependence``), which after restriction to the support differs from the
  mechanism's level.
- ``oos_distance``: mean distance from the OOS latents to their nearest training latents
  (see ``oos_distance``): how far the OOS set asks a model to extrapolate.
"""

from __future__ import annotations

import numpy as np
import torch

from additive.data import Datasets, Split
from additive.latents import LatentSpace
from additive.metrics import mcc_pearson, oos_distance, realised_dependence, spearman_matching, tree_matching
from additive.plugins import declares_blocks, is_plugin
from additive.render import render_balls_uint8

_CHUNK = 256  # images per forward pass; mini's 5,000 validation images, 1 thread: 1.5 s at 256, 1.9 s at 1024
_TREE_FIT = 10000  # training encodings used to fit LMS_tree's regressors
_RECOMBINE_TRIES = 32


@torch.no_grad()
def encode(encoder: torch.nn.Module, images: torch.Tensor) -> np.ndarray:
    """Predicted latents of uint8 or float images, in chunks."""
    out = []
    for i in range(0, len(images), _CHUNK):
        x = images[i : i + _CHUNK]
        x = x.float().div(255.0) if x.dtype == torch.uint8 else x
        out.append(encoder(x).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 0), dtype=np.float32)


@torch.no_grad()
def decode(decoder: torch.nn.Module, z_hat: np.ndarray, device: torch.device) -> torch.Tensor:
    zt = torch.as_tensor(z_hat, dtype=torch.float32, device=device)
    return torch.cat([decoder(zt[i : i + _CHUNK]) for i in range(0, len(zt), _CHUNK)])


@torch.no_grad()
def mean_squared_error(encoder: torch.nn.Module, decoder: torch.nn.Module, split: Split) -> float:
    """Mean pixel MSE between images and their reconstructions (NaN for no images)."""
    if len(split) == 0:
        return float("nan")
    total, count = 0.0, 0
    for i in range(0, len(split), _CHUNK):
        x = split.float_images(i, i + _CHUNK)
        total += float(((decoder(encoder(x)).float() - x) ** 2).sum())
        count += x.numel()
    return total / count


def reconstruction_rmse(encoder: torch.nn.Module, decoder: torch.nn.Module, split: Split) -> float:
    """RMSE between images and their reconstructions, pixels in [0, 1]."""
    return float(np.sqrt(mean_squared_error(encoder, decoder, split)))


def searches_partitions(space: LatentSpace, decoder_kind: str, decoder: torch.nn.Module) -> bool:
    """Whether LMS_tree scores this decoder over the best partition of the predicted
    dimensions into blocks: decoders without a known block structure (monolithic, and
    plugins that do not declare ``additive_blocks``, ``additive.plugins.declares_blocks``)."""
    if decoder_kind == "monolithic":
        return True
    return is_plugin(decoder_kind) and not declares_blocks(decoder, space.block_sizes)


def lms(
    space: LatentSpace, search_partitions: bool, z_fit, zh_fit, z_eval, zh_eval
) -> tuple[float, list[tuple[int, ...]]]:
    """LMS_Spear for scalar blocks, LMS_tree otherwise; with the matched predicted
    dimensions of every true block. ``search_partitions`` (``searches_partitions``): score
    the best partition of the predicted dimensions into blocks (docs/PROTOCOL.md, "The
    metrics"), else the code's own blocks in order."""
    if space.block_size == 1:
        score, match = spearman_matching(z_eval, zh_eval)
        return score, [(int(m),) for m in match]
    return tree_matching(z_fit, zh_fit, z_eval, zh_eval, space.block_size, search_partitions=search_partitions)


@torch.no_grad()
def recombined_codes(
    encoder: torch.nn.Module,
    space: LatentSpace,
    z_star: np.ndarray,
    pool: np.ndarray,
    matched: list[tuple[int, ...]],
    image_size: int,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Codes of latents ``z_star`` built from in-support images only.

    For each true block i, an in-support latent whose block i equals z*_i is built (block
    i of a random latent from ``pool`` replaced by z*_i, kept if still in S) and encoded;
    the predicted dimensions matched to true block i are taken from its code. Returns the
    assembled codes and a mask of the points for which every block found a carrier.
    """
    rng = np.random.default_rng(seed)
    n = len(z_star)
    d_hat = sum(len(m) for m in matched)
    z_hat = np.zeros((n, d_hat), dtype=np.float32)
    found_all = np.ones(n, dtype=bool)
    for i, sl in enumerate(space.blocks):
        carrier = np.repeat(pool[:1], n, axis=0)
        found = np.zeros(n, dtype=bool)
        for _ in range(_RECOMBINE_TRIES):
            todo = np.flatnonzero(~found)
            if len(todo) == 0:
                break
            cand = pool[rng.integers(0, len(pool), len(todo))].copy()
            cand[:, sl] = z_star[todo, sl]
            ok = space.contains(cand)
            carrier[todo[ok]] = cand[ok]
            found[todo[ok]] = True
        found_all &= found
        codes = encode(encoder, render_balls_uint8(carrier, space, image_size, device=device))
        dims = list(matched[i])
        z_hat[:, dims] = codes[:, dims]
    return z_hat, found_all


@torch.no_grad()
def rmse_recombine(
    encoder: torch.nn.Module,
    decoder: torch.nn.Module,
    space: LatentSpace,
    oos: Split,
    pool: np.ndarray,
    matched: list[tuple[int, ...]],
    image_size: int,
    seed: int = 0,
) -> tuple[float, int]:
    """Cartesian-product extrapolation without relying on the encoder generalising OOS:
    each OOS latent z* is encoded block by block from in-support images
    (``recombined_codes``), decoded, and compared with the image of z*. OOS points for
    which some block finds no in-support carrier are skipped. Which predicted dimensions
    belong to which true block comes from ``matched``, the ground-truth matching of the
    LMS step. Returns the RMSE and the number of OOS points used."""
    if len(oos) == 0 or not matched:
        return float("nan"), 0
    device = oos.images.device
    z_hat, found = recombined_codes(encoder, space, oos.z.cpu().numpy(), pool, matched, image_size, device, seed)
    if not found.any():
        return float("nan"), 0
    recon = decode(decoder, z_hat[found], device)
    target = oos.float_images()[torch.as_tensor(found, device=device)]
    return float(torch.sqrt(((recon.float() - target) ** 2).mean())), int(found.sum())


def evaluate(
    encoder: torch.nn.Module,
    decoder: torch.nn.Module,
    data: Datasets,
    space: LatentSpace,
    decoder_kind: str,
    image_size: int,
    seed: int = 0,
) -> dict[str, float | int]:
    """All final metrics of a trial (encoder and decoder are put in eval mode)."""
    encoder.eval()
    decoder.eval()
    z_train = data.train.z.cpu().numpy()  # one host copy for every metric below
    z_oos = data.oos.z.cpu().numpy()
    z_fit = z_train[:_TREE_FIT]
    zh_fit = encode(encoder, data.train.images[:_TREE_FIT]) if space.block_size > 1 else None
    z_test = data.test.z.cpu().numpy()
    zh_test = encode(encoder, data.test.images)
    search = searches_partitions(space, decoder_kind, decoder)
    lms_id, matched = lms(space, search, z_fit, zh_fit, z_test, zh_test)
    out = {
        "rmse_id": reconstruction_rmse(encoder, decoder, data.test),
        "lms_id": lms_id,
        "mcc_id": mcc_pearson(z_test, zh_test),
        "rmse_ood": float("nan"),
        "lms_ood": float("nan"),
        "rmse_recombine": float("nan"),
        "oos_count": len(data.oos),
        "recombine_count": 0,
        "realised_dependence": realised_dependence(z_train, space.blocks),
        "oos_distance": oos_distance(z_oos, z_train),
    }
    if len(data.oos) >= 2:
        zh_oos = encode(encoder, data.oos.images)
        out["rmse_ood"] = reconstruction_rmse(encoder, decoder, data.oos)
        out["lms_ood"] = lms(space, search, z_fit, zh_fit, z_oos, zh_oos)[0]
        out["rmse_recombine"], out["recombine_count"] = rmse_recombine(
            encoder, decoder, space, data.oos, z_train, matched, image_size, seed
        )
    return out
