"""``TrialSpec``: the whole interface of one trial, validated at construction.

One frozen dataclass holds every setting of a trial (data, model, optimisation,
evaluation). A sweep resolves one per trial and stores it, flattened, beside the
trial's metrics, so every row of the results can be rerun alone with ``run_trial``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from additive.errors import must
from additive.latents import LatentSpace
from additive.models import BODIES, DECODERS, ENCODERS

LR_DECAYS = ("none", "step", "cosine")
ACCELERATORS = ("auto", "cpu", "cuda")
FAULTS = ("none", "raise", "nan", "crash", "slow")


@dataclass(frozen=True)
class TrialSpec:
    """Every setting of one trial. Defaults follow the paper's ScalarLatents run
    (PAPER.md), except the encoder (a small conv net; ``resnet18`` is the paper's)."""

    # data
    dataset: str = "scalar"
    n_objects: int = 2
    support: str = "l_shape"
    support_param: float | None = None
    avoid_overlap: bool | None = None
    dependence_mechanism: str = "copula"
    dependence: float = 0.0
    image_size: int = 64
    n_train: int = 20000
    n_val: int | None = None  # None: n_train // 4, as in the paper
    n_test: int = 2000
    n_oos: int = 2000
    # model
    encoder: str = "conv"
    decoder: str = "additive"
    body: str = "mlp"
    width: int = 512
    depth: int = 5
    channels: int = 64  # decoder convolution channels (the paper's 64)
    batch_norm: bool = True
    match_params: bool = False
    # optimisation
    lr: float = 1e-3
    weight_decay: float = 5e-4
    batch_size: int = 64
    steps: int = 10000
    lr_decay: str = "none"
    lr_decay_every: int = 0  # step decay period in steps; 0: steps // 3
    lr_decay_gamma: float = 0.5
    eval_every: int = 500
    bn_recalibrate: int = 4096  # training images to recompute BatchNorm statistics from before every evaluation; 0: off
    patience: int = 0  # evaluations without improvement before stopping; 0: off
    # execution
    seed: int = 0
    threads: int = 0  # torch CPU threads; 0: leave torch's default
    accelerator: str = "auto"  # auto (CUDA when present), cpu or cuda
    amp: bool = False  # bf16 autocast on CUDA
    max_seconds: float = 0.0  # time budget of the training loop; 0: none
    max_memory_mb: int = 0  # resident memory budget of the trial's process; 0: none
    fault: str = "none"  # fault injection for tests: raise, nan (diverge), crash (worker dies), slow

    def __post_init__(self) -> None:
        _check_types(self)
        self.latent_space()  # validates the data fields
        _positive(self, "image_size", "n_train", "n_test", "width", "depth", "channels", "batch_size", "steps", "eval_every")
        _non_negative(
            self, "n_oos", "bn_recalibrate", "patience", "seed", "threads", "lr_decay_every", "max_seconds", "max_memory_mb",
            "weight_decay",
        )
        if self.n_val is not None and self.n_val < 2:
            raise must("n_val", "be null or an integer >= 2", self.n_val)
        if self.image_size < 8 or self.image_size & (self.image_size - 1):
            raise must("image_size", "be a power of two >= 8", self.image_size)
        if not self.lr > 0:
            raise must("lr", "be > 0", self.lr)
        if not 0 < self.lr_decay_gamma <= 1:
            raise must("lr_decay_gamma", "be in (0, 1]", self.lr_decay_gamma)
        if self.batch_size > self.n_train:
            raise must("batch_size", f"be <= n_train ({self.n_train})", self.batch_size)
        for name, allowed in (
            ("encoder", ENCODERS), ("decoder", DECODERS), ("body", BODIES), ("lr_decay", LR_DECAYS),
            ("accelerator", ACCELERATORS), ("fault", FAULTS),
        ):
            if getattr(self, name) not in allowed:
                raise must(name, f"be one of {list(allowed)}", getattr(self, name))

    @property
    def val_size(self) -> int:
        return self.n_val if self.n_val is not None else max(self.n_train // 4, 2)

    def latent_space(self) -> LatentSpace:
        return LatentSpace(
            dataset=self.dataset,
            n_objects=self.n_objects,
            support=self.support,
            support_param=self.support_param,
            avoid_overlap=self.avoid_overlap,
            dependence_mechanism=self.dependence_mechanism,
            dependence=self.dependence,
        )

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


def trial_field_names() -> list[str]:
    return [f.name for f in fields(TrialSpec)]


def _allowed_types(annotation: str) -> tuple[type, ...]:
    kinds: list[type] = []
    for part in annotation.replace(" ", "").split("|"):
        kinds += {"int": [int], "float": [float, int], "str": [str], "bool": [bool], "None": [type(None)]}[part]
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
