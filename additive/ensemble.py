"""K copies of one model trained as one vectorised ensemble (``torch.func``).

The members of a restart group share the data and the batch order and differ only in
their initialisation, so one training step of all K is one step of a model whose every
parameter has a leading K axis: ``torch.func.vmap`` over ``functional_call`` runs the K
forward and backward passes as batched operations. Adam is elementwise, so Adam over the
stacked parameters is K independent Adams. On CPU this gives no gain (BENCHMARKS.md); on a
GPU, where one small model leaves most of the device idle, it may. ``benchmarks/gpu.py
--ensemble`` measures it; the trial path uses it only once that measurement shows the gain
(docs/DESIGN.md).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap


class Ensemble(nn.Module):
    """K (encoder, decoder) pairs of one architecture as stacked parameters.

    ``reconstruction(x)`` returns the K per-member losses of one batch (a K-vector), whose
    sum's gradient is every member's own gradient, as K separate steps would compute."""

    def __init__(self, pairs: list[tuple[nn.Module, nn.Module]]):
        super().__init__()
        if not pairs:
            raise ValueError("an ensemble needs at least one member")
        models = [nn.Sequential(enc, dec) for enc, dec in pairs]
        params, buffers = stack_module_state(models)  # type: ignore[arg-type]
        self.names = list(params)
        self.stacked = nn.ParameterDict({_key(k): nn.Parameter(v) for k, v in params.items()})
        self.buffer_values = buffers
        self.base = copy.deepcopy(models[0]).to("meta")  # the architecture, without storage
        self.k = len(pairs)

    def _losses(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor):
        out = functional_call(self.base, (params, buffers), (x,))
        return ((out.float() - x) ** 2).mean()

    def reconstruction(self, x: torch.Tensor) -> torch.Tensor:
        params = {name: self.stacked[_key(name)] for name in self.names}
        return vmap(self._losses, in_dims=(0, 0, None))(params, self.buffer_values, x)

    def member_state(self, i: int) -> dict[str, torch.Tensor]:
        """Member i's parameters under the names of ``nn.Sequential(encoder, decoder)``."""
        return {name: self.stacked[_key(name)][i].detach() for name in self.names}


def _key(name: str) -> str:
    return name.replace(".", "__")  # ParameterDict keys cannot hold dots
