"""``TrialSpec``: the whole interface of one trial, validated at construction.

One frozen dataclass holds every setting of a trial (data, model, optimisation,
evaluation). A sweep resolves one per trial and stores it, flattened, beside the
trial's metrics, so every row of the results can be rerun alone with ``run_trial``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from additive.errors import must
from additive.latents import LatentSpace
from additive.plugins import is_plugin, parse_options

# The names of the model pieces (built by additive/models.py); kept here so that specs
# are validated without importing torch.
DECODERS = ("additive", "monolithic", "masked")
BODIES = ("mlp", "broadcast")
ENCODERS = ("conv", "resnet18")
MLP_TAILS = ("paper", "linear")
LR_DECAYS = ("none", "step", "cosine")
ACCELERATORS = ("auto", "cpu", "cuda")
FAULTS = ("none", "raise", "nan", "crash", "slow")


# Member r of a restart group initialises from its base seed + r x this stride, so members of
# different seeds never share an initialisation while seeds stay below a million.
RESTART_SEED_STRIDE = 1_000_000

PAPER_WEIGHT_DECAY = 5e-4
PIXEL_SCALE = 255.0
# The authors' weight decay acts on raw [0, 255] pixels; relative to the data loss, the
# same strength on our [0, 1] pixels is 5e-4 / 255^2 (docs/PROTOCOL.md, "Scale matters").
SCALE_FAITHFUL_WEIGHT_DECAY = PAPER_WEIGHT_DECAY / PIXEL_SCALE**2


def _f(default: Any, help: str) -> Any:
    """A trial field: its default and its help text (printed by `adx trial fields`)."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class TrialSpec:
    """Every setting of one trial. Defaults follow the paper's ScalarLatents run
    (docs/PROTOCOL.md) where its choices do not depend on pixel scale, translated where they do
    (weight decay), with the departures chosen by the recipe ablation (docs/RESULTS.md,
    "recipe"): a small conv encoder (``resnet18`` is the paper's) and no BatchNorm."""

    # data
    dataset: str = _f("scalar", "scalar (ScalarLatents, one height per ball) or block (BlockLatents, x and y per ball)")
    n_objects: int = _f(2, "number of balls, i.e. of latent blocks (2-3 for scalar latents)")
    support: str = _f(
        "l_shape", "support shape S of the training latents (see additive/latents.py), or a plugin package.module:name"
    )
    support_param: float | None = _f(
        None, "l_shape threshold, diagonal_band width or disconnected gap; null: the shape's default"
    )
    support_options: str | None = _f(
        None, "a plugin support's keyword arguments: a mapping (stored as JSON); null: none"
    )
    l_density: str = _f(
        "paper", "l_shape only: paper (the authors' sampler: 1/4, 1/4, 1/2 on the L's squares) or uniform (1/3 each)"
    )
    avoid_overlap: bool | None = _f(None, "reject overlapping balls; null: on for block latents")
    dependence_mechanism: str = _f("copula", "copula (Gaussian copula) or scm (the paper's SCM rule)")
    dependence: float = _f(0.0, "dependence level: copula correlation in [0, 1) or SCM probability in [0, 1]")
    image_size: int = _f(64, "image side in pixels, a power of two >= 8")
    n_train: int = _f(20000, "training images (the paper's 20,000)")
    n_val: int | None = _f(None, "validation images; null: n_train // 4, as in the paper")
    n_test: int = _f(2000, "in-support (ID) test images")
    n_oos: int = _f(2000, "out-of-support (OOS) test images, in CPE(S) minus S")
    # model
    encoder: str = _f(
        "conv",
        "conv (small stride-2 conv net), resnet18 (the paper's ResNet-18, random init) or a plugin package.module:name",
    )
    encoder_options: str | None = _f(
        None, "a plugin encoder's keyword arguments: a mapping (stored as JSON); null: none"
    )
    encoder_depth: int = _f(0, "stride-2 convolutions of the conv encoder; 0: down to 4x4 pixels")
    encoder_batch_norm: bool = _f(False, "BatchNorm after the encoder's hidden layers (the paper's ResNet head has it)")
    code_batch_norm: bool = _f(
        False, "BatchNorm1d on the code, as the paper's encoder ends; in training each code then depends on its batch"
    )
    decoder: str = _f(
        "additive",
        "additive (one body per block, images summed), monolithic, masked or a plugin package.module:name",
    )
    decoder_options: str | None = _f(
        None, "a plugin decoder's keyword arguments: a mapping (stored as JSON); null: none"
    )
    body: str = _f("mlp", "decoder body: mlp (the paper's MLP + transposed convs) or broadcast (spatial broadcast)")
    width: int = _f(512, "hidden width of the decoder MLP (the paper's 512)")
    depth: int = _f(5, "hidden layers of the decoder MLP (the paper's 5)")
    channels: int = _f(64, "decoder transposed-conv channels (the paper's 64)")
    mlp_tail: str = _f(
        "paper",
        "end of the decoder MLP: paper (Linear -> [BatchNorm] -> LeakyReLU before the reshape) or linear (plain Linear)",
    )
    batch_norm: bool = _f(False, "BatchNorm1d in the decoder MLP (the paper's decoder has it)")
    match_params: bool = _f(False, "widen a monolithic decoder to the additive decoder's parameter count")
    # optimisation
    lr: float = _f(1e-3, "Adam learning rate (the paper's 1e-3)")
    weight_decay: float = _f(
        SCALE_FAITHFUL_WEIGHT_DECAY,
        "Adam weight decay; default 5e-4 / 255^2, the paper's 5e-4 translated from [0, 255] to [0, 1] pixels",
    )
    batch_size: int = _f(64, "training batch size (the paper's 64 on ScalarLatents)")
    steps: int = _f(10000, "training steps")
    lr_decay: str = _f("none", "learning-rate schedule: none (the paper's in effect), step or cosine")
    lr_decay_every: int = _f(0, "step schedule: period in steps; 0: steps // 3")
    lr_decay_gamma: float = _f(0.5, "step schedule: factor applied every period")
    lr_floor: float = _f(0.0, "cosine schedule: the final learning rate as a fraction of lr")
    lr_warmup: int = _f(
        0, "steps of linear learning-rate warmup from lr / lr_warmup to lr, before any schedule; 0: none"
    )
    eval_every: int = _f(500, "steps between evaluations of the validation loss")
    bn_recalibrate: int = _f(
        4096, "training images to recompute BatchNorm statistics from before every evaluation; 0: off"
    )
    patience: int = _f(0, "evaluations without improvement of the validation loss before stopping; 0: off")
    # execution
    seed: int = _f(0, "random seed of data, initialisation and batches")
    init_seed: int | None = _f(None, "seed of the networks' initialisation alone; null: from seed")
    restart: int = _f(
        0,
        "restart index r: r >= 1 initialises the networks from (init_seed or seed) + 1,000,000 x r; "
        "0: as init_seed says (sweeps' `restarts` set it per member)",
    )
    batch_seed: int | None = _f(None, "seed of the order of training batches alone; null: seed")
    threads: int = _f(0, "torch CPU threads; 0: the CPUs Ray gives the trial (torch's default outside Ray)")
    accelerator: str = _f("auto", "auto (CUDA when present), cpu or cuda")
    amp: bool | str = _f(
        False,
        "bf16 autocast in training (fp32 weights and loss) where the hardware has bf16: CUDA, or a CPU with "
        "AVX512-BF16 or AMX; elsewhere fp32, with a warning. auto: whichever of fp32 and bf16 trains this model "
        "faster here, timed on a few steps (a sweep decides once, at its start, and keeps it on resume)",
    )
    val_amp: bool = _f(
        False,
        "the validation passes under bf16 autocast too when training runs under it (about 2.4x cheaper on a CPU "
        "with AMX); the final metrics are always computed in fp32",
    )
    max_seconds: float = _f(0.0, "time budget of the training loop in seconds; 0: none")
    max_memory_mb: int = _f(0, "resident memory budget of the trial's process in MB; 0: none")
    fault: str = _f("none", "fault injection for tests: none, raise, nan (diverge), crash (worker dies), slow")

    def __post_init__(self) -> None:
        for name in ("decoder_options", "encoder_options", "support_options"):  # a mapping, stored as JSON text
            object.__setattr__(self, name, parse_options(getattr(self, name), name))
        _check_types(self)
        self.latent_space()  # validates the data fields
        _positive(
            self, "image_size", "n_train", "n_test", "width", "depth", "channels", "batch_size", "steps", "eval_every"
        )
        _non_negative(
            self,
            "n_oos",
            "bn_recalibrate",
            "patience",
            "seed",
            "restart",
            "threads",
            "lr_decay_every",
            "lr_warmup",
            "max_seconds",
            "max_memory_mb",
            "weight_decay",
        )
        for name in ("init_seed", "batch_seed"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise must(name, "be null or an integer >= 0", getattr(self, name))
        if isinstance(self.amp, str) and self.amp != "auto":
            raise must("amp", "be true, false or 'auto'", self.amp)
        if self.n_val is not None and self.n_val < 2:
            raise must("n_val", "be null or an integer >= 2", self.n_val)
        if self.image_size < 8 or self.image_size & (self.image_size - 1):
            raise must("image_size", "be a power of two >= 8", self.image_size)
        if not self.lr > 0:
            raise must("lr", "be > 0", self.lr)
        if not 0 < self.lr_decay_gamma <= 1:
            raise must("lr_decay_gamma", "be in (0, 1]", self.lr_decay_gamma)
        if not 0 <= self.lr_floor <= 1:
            raise must("lr_floor", "be in [0, 1]", self.lr_floor)
        max_depth = int(math.log2(self.image_size))
        if not 0 <= self.encoder_depth <= max_depth:
            raise must("encoder_depth", f"be in [0, {max_depth}] at image_size {self.image_size}", self.encoder_depth)
        if self.batch_size > self.n_train:
            raise must("batch_size", f"be <= n_train ({self.n_train})", self.batch_size)
        for name, names in (("encoder", ENCODERS), ("decoder", DECODERS)):
            value = getattr(self, name)
            if value not in names and not is_plugin(value):
                raise must(name, f"be one of {list(names)} or a plugin path package.module:name", value)
            if getattr(self, f"{name}_options") is not None and not is_plugin(value):
                raise must(
                    f"{name}_options", f"be null for the built-in {name} {value!r}", getattr(self, f"{name}_options")
                )
        for name, allowed in (
            ("body", BODIES),
            ("lr_decay", LR_DECAYS),
            ("accelerator", ACCELERATORS),
            ("fault", FAULTS),
            ("mlp_tail", MLP_TAILS),
        ):
            if getattr(self, name) not in allowed:
                raise must(name, f"be one of {list(allowed)}", getattr(self, name))

    @property
    def val_size(self) -> int:
        return self.n_val if self.n_val is not None else max(self.n_train // 4, 2)

    def latent_space(self) -> LatentSpace:
        """The data fields of this trial as a ``LatentSpace`` (every field of the latent
        space is a trial field of the same name; ``tests/additive/test_spec.py`` keeps their
        defaults equal)."""
        return LatentSpace(**{name: getattr(self, name) for name in LATENT_FIELDS})

    @property
    def effective_init_seed(self) -> int | None:
        """The seed the networks are initialised from; None: the random state after the
        data were drawn from ``seed`` (the behaviour before ``init_seed`` existed)."""
        if self.restart:
            return (self.init_seed if self.init_seed is not None else self.seed) + RESTART_SEED_STRIDE * self.restart
        return self.init_seed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrialSpec:
        """Build from a plain mapping; unknown keys are an error naming the key."""
        if not isinstance(values, dict):
            raise must("trial", "be a mapping of field names to values", values)
        known = {f.name for f in fields(cls)}
        for key in values:
            if key not in known:
                raise must(str(key), "be a known trial field (see `adx trial fields`)", key)
        return cls(**values)


@dataclass(frozen=True)
class RestartsSpec:
    """``k`` initialisations per (trial, seed), raced in rungs: every member trains to the
    first rung; at each rung the better half (rounded up) by validation loss so far trains
    on and the others stop; at the last rung one member is kept, and it trains to ``steps``
    (successive halving inside the group). ``select_at: N`` is the one-rung schedule
    ``rungs: [N]``. With neither, every member runs the full budget and the lowest final
    validation loss is kept."""

    k: int = 1
    select_at: int | None = None
    rungs: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise must("k", "be an integer >= 1", self.k)
        if self.select_at is not None and (
            isinstance(self.select_at, bool) or not isinstance(self.select_at, int) or self.select_at < 1
        ):
            raise must("select_at", "be null or an integer >= 1", self.select_at)
        if self.rungs is None:
            return
        rungs = self.rungs
        if (
            not isinstance(rungs, (list, tuple))
            or not rungs
            or not all(isinstance(r, int) and not isinstance(r, bool) and r >= 1 for r in rungs)
            or any(b <= a for a, b in zip(rungs, rungs[1:], strict=False))
        ):
            raise must("rungs", "be null or a non-empty list of increasing steps >= 1", rungs)
        if self.select_at is not None:
            raise must("rungs", "be left out with select_at (select_at: N is the schedule rungs: [N])", list(rungs))
        object.__setattr__(self, "rungs", tuple(rungs))

    @property
    def schedule(self) -> tuple[int, ...]:
        """The rung steps: ``rungs``, or ``(select_at,)``, or none (every member in full)."""
        if self.rungs is not None:
            return self.rungs
        return () if self.select_at is None else (self.select_at,)

    @property
    def survivors(self) -> tuple[int, ...]:
        """How many members train on after each rung: half, rounded up, at every rung but
        the last, and one after the last (never more than trained into the rung)."""
        out, alive = [], self.k
        for i in range(len(self.schedule)):
            alive = 1 if i == len(self.schedule) - 1 else (alive + 1) // 2
            out.append(alive)
        return tuple(out)

    def check(self, spec: TrialSpec) -> None:
        """Every rung must fall on an evaluation before the last step, so that members are
        compared on evaluations a plain run also makes."""
        name, each = ("rungs", "each ") if self.rungs is not None else ("select_at", "")
        for step in self.schedule:
            if step >= spec.steps:
                raise must(name, f"{each}be below steps ({spec.steps}); leave it out to run every member in full",
                           step)  # fmt: skip
            if step % spec.eval_every:
                raise must(name, f"{each}be a multiple of eval_every ({spec.eval_every})", step)

    def cost(self, steps: int) -> float:
        """Training steps of a group, in units of one full run (no member failing)."""
        if self.k == 1 or not self.schedule:
            return float(self.k)
        trained, alive, start = 0, self.k, 0
        for rung, keep in zip(self.schedule, self.survivors, strict=True):
            trained += alive * (rung - start)
            alive, start = min(alive, keep), rung
        return (trained + alive * (steps - start)) / steps

    def to_dict(self) -> dict[str, Any]:
        """The spelling of a sweep spec (``rungs`` only when set)."""
        out: dict[str, Any] = {"k": self.k, "select_at": self.select_at}
        if self.rungs is not None:
            out["rungs"] = list(self.rungs)
        return out


LATENT_FIELDS = tuple(f.name for f in fields(LatentSpace) if f.init)


def trial_field_names() -> list[str]:
    return [f.name for f in fields(TrialSpec)]


def trial_field_help(name: str) -> str:
    return next(f.metadata.get("help", "") for f in fields(TrialSpec) if f.name == name)


def _allowed_types(annotation: str) -> tuple[type, ...]:
    table: dict[str, list[type]] = {
        "int": [int],
        "float": [float, int],
        "str": [str],
        "bool": [bool],
        "None": [type(None)],
    }
    kinds: list[type] = []
    for part in annotation.replace(" ", "").split("|"):
        kinds += table[part]
    return tuple(kinds)


def _check_types(spec: TrialSpec) -> None:
    for f in fields(spec):
        value = getattr(spec, f.name)
        allowed = _allowed_types(str(f.type))
        is_bool = isinstance(value, bool)
        ok = isinstance(value, allowed) and not (is_bool and bool not in allowed)
        if ok and isinstance(value, float) and not math.isfinite(value):
            ok = False
        if not ok:
            names = " or ".join("null" if t is type(None) else t.__name__ for t in dict.fromkeys(allowed))
            raise must(f.name, f"be {names}", value)
        if isinstance(value, int) and not is_bool and "float" in str(f.type):
            object.__setattr__(spec, f.name, float(value))


def _positive(spec: TrialSpec, *names: str) -> None:
    for name in names:
        if not getattr(spec, name) > 0:
            raise must(name, "be > 0", getattr(spec, name))


def _non_negative(spec: TrialSpec, *names: str) -> None:
    for name in names:
        if getattr(spec, name) < 0:
            raise must(name, "be >= 0", getattr(spec, name))
