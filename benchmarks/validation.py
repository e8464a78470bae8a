"""Cheaper validation passes, and whether they keep the same members and metrics.

    python benchmarks/validation.py [--seeds 200,201,202] [--decoders additive,monolithic] [--spec map]

A restart group of the map (its L cell: `mini`'s recipe, 2 members kept at step 1,000) is
trained with both members to the full budget, evaluating every 250 steps; at every
evaluation the validation loss is computed in fp32 and under bf16 autocast, and the
networks are kept. The training does not depend on the validation passes (they draw no
random numbers and change no state), so one training serves every validation policy:

- the precision of the pass (fp32, or bf16 as ``val_amp`` does),
- how often it runs (every 250 steps, or every 500: half the passes).

For each policy the script replays what the group would do: the member kept at the rung
(the lowest validation loss so far), the kept member's best evaluation (the checkpoint
model selection restores), and the metrics of that checkpoint (``additive.evaluate``);
it prints one JSON object per group and policy, then a summary against the reference policy
(fp32 every 250 steps): groups keeping the same member, runs restoring the same
checkpoint, the largest metric differences, and the seconds of validation per group.
Training precision: ``amp: true`` where the CPU has bf16 (as ``amp: auto`` picks on a CPU
where bf16 is faster), else fp32 (then the bf16 policies are skipped).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

POLICIES = (("fp32", 250), ("bf16", 250), ("fp32", 500), ("bf16", 500))
REFERENCE = ("fp32", 250)
METRICS = ("lms_id", "rmse_id", "rmse_ood", "lms_ood")


def map_spec(name: str, decoder: str, seed: int, steps: int = 0):
    """The trial spec of the map's L cell (or another preset's first cell) for one group;
    ``steps``: a shorter run (a check of this script), 0: the spec's."""
    from sweeps.spec import load_sweep_spec

    sweep = load_sweep_spec(ROOT / "sweeps" / "specs" / f"{name}.yaml")
    cell = next(c for c in sweep.cells() if c.fields.get("support", sweep.fixed.get("support")) == "l_shape")
    spec = sweep.trial_spec(cell, seed, {"decoder": decoder})
    spec = dataclasses.replace(spec, eval_every=250, val_amp=False, threads=1, steps=steps or spec.steps)
    return spec, sweep.restarts


def train_member(args: tuple) -> dict:
    """Train one member with evaluations every 250 steps; at each, both validation losses
    and the metrics-to-be of the checkpoint (computed only for the checkpoints a policy
    restores, after training)."""
    name, decoder, seed, restart, steps = args
    import torch

    from additive.evaluate import evaluate
    from additive.train import Training, bf16_available, prepare_data, validation_loss

    torch.set_num_threads(1)
    spec, _ = map_spec(name, decoder, seed, steps)
    amp = bf16_available(torch.device("cpu"))
    spec = dataclasses.replace(spec, restart=restart, amp=amp)
    data, device, _ = prepare_data(spec)
    evals: dict[int, dict] = {}
    states: dict[int, dict] = {}

    def observe(step, encoder, decoder_net, data_):
        t = time.perf_counter()
        fp32 = validation_loss(encoder, decoder_net, data_, bf16=False)
        t32 = time.perf_counter() - t
        t = time.perf_counter()
        bf16 = validation_loss(encoder, decoder_net, data_, bf16=True) if amp else float("nan")
        t16 = time.perf_counter() - t
        evals[step] = {"fp32": fp32, "bf16": bf16, "fp32_s": t32, "bf16_s": t16}
        states[step] = {
            "encoder": {k: v.clone() for k, v in encoder.state_dict().items()},
            "decoder": {k: v.clone() for k, v in decoder_net.state_dict().items()},
        }

    training = Training(spec, data, device, observe=observe)
    t0 = time.perf_counter()
    training.advance(spec.steps)
    train_s = time.perf_counter() - t0
    out = {"decoder": decoder, "seed": seed, "restart": restart, "amp": amp, "train_s": train_s, "evals": evals}
    # The metrics of every checkpoint some policy could restore: the best evaluation per policy.
    wanted = set()
    for precision, every in POLICIES:
        if precision == "bf16" and not amp:
            continue
        steps = [s for s in evals if s % every == 0 or s == spec.steps]
        wanted.add(min(steps, key=lambda s: evals[s][precision]))
    metrics = {}
    for step in sorted(wanted):
        training.encoder.load_state_dict(states[step]["encoder"])
        training.decoder.load_state_dict(states[step]["decoder"])
        m = evaluate(
            training.encoder, training.decoder, data, spec.latent_space(), spec.decoder, spec.image_size, spec.seed
        )
        metrics[step] = {k: float(m[k]) for k in METRICS}
    out["metrics"] = metrics
    return out


def replay(members: list[dict], rung: int, steps: int, precision: str, every: int) -> dict:
    """What a group does under one validation policy: kept member, its restored checkpoint
    and that checkpoint's metrics, and the validation passes it makes."""

    def evaluated(m: dict, until: int) -> list[int]:
        return [s for s in m["evals"] if s <= until and (s % every == 0 or s == steps)]

    at_rung = [min(m["evals"][s][precision] for s in evaluated(m, rung)) for m in members]
    kept = min(range(len(members)), key=lambda i: at_rung[i])
    member = members[kept]
    best = min(evaluated(member, steps), key=lambda s: member["evals"][s][precision])
    passes = sum(len(evaluated(m, rung)) for m in members) + len([s for s in evaluated(member, steps) if s > rung])
    pass_s = sorted(e[f"{precision}_s"] for m in members for e in m["evals"].values())
    median = pass_s[len(pass_s) // 2]
    return {"kept": member["restart"], "best_step": best, **member["metrics"][best], "passes": passes,
            "val_seconds": passes * median}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default="map")
    parser.add_argument("--seeds", default="200,201,202")
    parser.add_argument("--decoders", default="additive,monolithic")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=0, help="a shorter run than the spec's (to check the script)")
    parser.add_argument("--rung", type=int, default=0, help="the rung step; 0: the spec's")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    decoders = args.decoders.split(",")
    spec, restarts = map_spec(args.spec, decoders[0], seeds[0], args.steps)
    rung = args.rung or restarts.schedule[0]
    jobs = [(args.spec, d, s, r, args.steps) for s in seeds for d in decoders for r in range(restarts.k)]
    from additive.precision import hardware

    print(json.dumps({"machine": hardware("cpu"), "spec": args.spec, "rung": rung, "k": restarts.k}), flush=True)
    with mp.get_context("spawn").Pool(args.workers) as pool:
        runs = pool.map(train_member, jobs, chunksize=1)
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault((run["decoder"], run["seed"]), []).append(run)
    table = []
    for (decoder, seed), members in groups.items():
        members.sort(key=lambda m: m["restart"])
        amp = members[0]["amp"]
        for precision, every in POLICIES:
            if precision == "bf16" and not amp:
                continue
            row = {"decoder": decoder, "seed": seed, "policy": f"{precision}/{every}"}
            row |= replay(members, rung, spec.steps, precision, every)
            table.append(row)
            print(json.dumps(row), flush=True)
    summarise(table)


def summarise(table: list[dict]) -> None:
    ref = {(r["decoder"], r["seed"]): r for r in table if r["policy"] == f"{REFERENCE[0]}/{REFERENCE[1]}"}
    for policy in dict.fromkeys(r["policy"] for r in table):
        rows = [r for r in table if r["policy"] == policy]
        same_member = sum(r["kept"] == ref[(r["decoder"], r["seed"])]["kept"] for r in rows)
        same_ckpt = sum(
            r["kept"] == ref[(r["decoder"], r["seed"])]["kept"]
            and r["best_step"] == ref[(r["decoder"], r["seed"])]["best_step"]
            for r in rows
        )
        diffs = {
            m: max(abs(r[m] - ref[(r["decoder"], r["seed"])][m]) for r in rows if r[m] == r[m]) for m in METRICS[:3]
        }
        identifies = sum(r["lms_id"] >= 99 for r in rows if r["decoder"] == "additive")
        print(json.dumps({
            "summary": policy, "groups": len(rows), "same_kept_member": same_member, "same_checkpoint": same_ckpt,
            "max_abs_diff": diffs, "additive_identifies": identifies,
            "val_seconds_per_group": sum(r["val_seconds"] for r in rows) / len(rows),
        }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
