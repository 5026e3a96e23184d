"""Evolving the agents' sparse networks: a strategy per network, driven by environment steps, targets following.

:class:`NetworkTopology` ties one online network (the actor, or the twin critic) to its optimizer, its
target network(s) and a :class:`~evosparse.topology.TopologyStrategy` built by :func:`build_strategy`:

1. **When**: the agent calls :meth:`NetworkTopology.step` right after that network's optimizer step, with
   the environment step count. An update happens once per multiple of ``update_every`` crossed (with
   ``n_envs`` environments the count jumps by ``n_envs``), with the fraction the schedule gives there.
   Calling it right after the network's own step matters for RigL: its gradient probe then holds the
   gradients of that network's own loss (the critic's forward in the actor loss would overwrite them).
2. **What**: the strategy rewires every sparse layer; ``apply_rewiring`` carries survivors' weights and
   Adam moments to their new positions and starts new connections with zero moments.
3. **Targets follow**: :func:`follow_topology` gives each target layer the online layer's pattern, without
   any dense copy: surviving connections keep their *target* values (the slow average the TD target
   relies on); new connections take the *online* value -- zero for RigL and for SET with
   ``new_weights="zero"``, so the target function is unchanged, and otherwise the value a hard target
   copy would give, rather than a zero the Polyak average would take hundreds of steps to move.
   Under ``gmp`` a target ``nn.Linear`` becomes a ``SparseLinear`` when its online layer is first pruned.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from evosparse.nn import SparseLinear
from evosparse.prune import Pruning, PruningSchedule, sparsify_linear
from evosparse.rl.config import AlgoConfig
from evosparse.rl.networks import layer_densities
from evosparse.topology import SET, TopologyStrategy, UpdateSchedule
from evosparse.topology.rigl import RigL
from evosparse.topology.static import StaticSparse


def build_strategy(
    config: AlgoConfig, sizes_per_mlp: list[list[int]], density: float, seed: int
) -> TopologyStrategy | None:
    """The strategy of one network (None for ``dense``); ``sizes_per_mlp``: layer sizes of each of its MLPs."""
    if config.strategy == "dense":
        return None
    schedule = UpdateSchedule(
        zeta=config.zeta, every=config.update_every, unit="step", decay=config.decay, stop_after=config.stop_after
    )
    if config.strategy == "static":
        return StaticSparse(UpdateSchedule(zeta=0.0), seed=seed)
    if config.strategy == "set":
        return SET(
            config.zeta, schedule=schedule, new_weights="init" if config.new_weights == "init" else "zero", seed=seed
        )
    if config.strategy == "rigl":
        return RigL(config.zeta, schedule=schedule, seed=seed)
    # gmp: each weight layer's final budget from the same Erdos-Renyi spread as a sparse-from-scratch agent.
    final_nnz = []
    for sizes in sizes_per_mlp:
        for (n_in, n_out), layer_density in zip(zip(sizes[:-1], sizes[1:]), layer_densities(sizes, density)):
            final_nnz.append(min(n_in * n_out, max(1, int(round(layer_density * n_in * n_out)))))
    every = config.update_every
    start = config.prune_start or every
    end = config.stop_after - config.stop_after % every if config.stop_after % every else config.stop_after
    pruning = PruningSchedule(kind="cubic", start=start, end=max(start, end), every=every, unit="step")
    return Pruning(final_nnz, schedule=pruning, seed=seed)


class NetworkTopology:
    """One online network, its optimizer, its targets and the strategy evolving them (see the module doc)."""

    def __init__(
        self,
        strategy: TopologyStrategy | None,
        online: nn.Module,
        optimizer: torch.optim.Optimizer,
        targets: tuple[nn.Module, ...] = (),
        *,
        every: int = 1,
    ) -> None:
        self.strategy, self.online, self.optimizer, self.targets = strategy, online, optimizer, targets
        self.every = every
        self.last_mark = 0  # the latest multiple of ``every`` an update was considered at
        self.n_changes = 0
        if strategy is not None:
            strategy.on_train_start(online, optimizer)

    def step(self, num_timesteps: int) -> bool:
        """Run the strategy if a multiple of ``every`` was crossed since the last call; True if it changed."""
        if self.strategy is None:
            return False
        mark = num_timesteps - num_timesteps % self.every
        if mark <= self.last_mark:
            return False
        self.last_mark = mark
        changed = bool(self.strategy.on_step_end(self.online, self.optimizer, mark))
        if changed:
            self.n_changes += 1
            for target in self.targets:
                follow_topology(self.online, target)
        return changed

    def state_dict(self) -> dict[str, Any]:
        state = {"last_mark": self.last_mark, "n_changes": self.n_changes}
        if self.strategy is not None:
            strategy_state = self.strategy.state_dict()
            strategy_state.pop("snapshot", None)  # gmp without rewinding: always None
            state["strategy"] = strategy_state
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last_mark, self.n_changes = int(state["last_mark"]), int(state["n_changes"])
        if self.strategy is not None:
            strategy_state = dict(state["strategy"])
            if isinstance(self.strategy, Pruning):
                strategy_state["snapshot"] = None
            self.strategy.load_state_dict(strategy_state)


def follow_topology(online: nn.Module, target: nn.Module) -> None:
    """Give every layer of ``target`` the pattern of the same layer of ``online`` (module names match).

    Survivors keep their target values, new connections take the online values (see the module doc).
    """
    target_modules = dict(target.named_modules())
    for name, layer in online.named_modules():
        if not isinstance(layer, SparseLinear):
            continue
        twin = target_modules[name]
        if isinstance(twin, nn.Linear):  # gmp's first pruning event: the target is converted too
            rows = torch.from_numpy(layer.pattern.rows).long()
            cols = torch.from_numpy(layer.pattern.cols).long()
            mask = torch.zeros(layer.out_features, layer.in_features, dtype=torch.bool)
            mask[rows, cols] = True
            twin = sparsify_linear(target, name, mask, backend=layer.backend)
            twin.values.requires_grad_(False)
        if twin.pattern is layer.pattern:
            continue
        new_keys, old_keys = layer.pattern.keys(), twin.pattern.keys()
        values = layer.values.detach().clone()
        if old_keys.shape[0]:
            where = np.minimum(np.searchsorted(old_keys, new_keys), old_keys.shape[0] - 1)
            survived = old_keys[where] == new_keys
            survivors = torch.from_numpy(np.flatnonzero(survived))
            values[survivors] = twin.values.detach()[torch.from_numpy(where[survived])]
        twin.set_pattern(layer.pattern, values)
