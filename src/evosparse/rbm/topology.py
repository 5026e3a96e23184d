"""RBM topologies: one registry (name -> how the pattern starts, whether it evolves) and SET for RBMs.

=========  ==========================================================  =======
name       initial connectivity                                        evolves
=========  ==========================================================  =======
dense      every connection (the fully connected RBM)                  no
fixprob    Erdos-Renyi with ``epsilon`` (the SET paper's FixProb)       no
set        Erdos-Renyi with ``epsilon``, then SET after every epoch     yes
xbm        scale-free, local, small-world (:mod:`evosparse.rbm.xbm`)    no
=========  ==========================================================  =======

SET for RBMs (:func:`evolve`), after each training epoch, exactly as the SET-RBM reference code does:

1. remove the fraction ``zeta`` of the positive weights closest to zero and the fraction ``zeta`` of the
   negative weights closest to zero (the paper's sign-wise rule, :func:`evosparse.topology.weakest_connections`),
2. regrow as many connections at empty positions drawn uniformly at random, with fresh N(0, init_std^2)
   weights (the reference's randn / 20) and zero momentum,
3. except after the *last* epoch: remove only (the reference ends with the pruned model).

Paper: Mocanu et al., "Scalable training of artificial neural networks with adaptive sparse connectivity
inspired by network science", Nature Communications 9, 2383 (2018) (SET-RBM, FixProb).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from evosparse.rbm.model import RBM, as_rng, full_pattern
from evosparse.rbm.xbm import xbm_pattern
from evosparse.sparse.init import erdos_renyi_nnz, erdos_renyi_pattern
from evosparse.sparse.pattern import SparsePattern
from evosparse.sparse.sampling import sample_free_keys
from evosparse.topology.set import weakest_connections


@dataclass(frozen=True)
class RBMTopology:
    """An entry of :data:`RBM_TOPOLOGIES`: how the pattern starts and whether SET evolves it."""

    description: str
    build: Callable[..., SparsePattern]
    """``build(n_visible, n_hidden, *, epsilon, visible_shape, phi, rewire, rng) -> SparsePattern``."""
    evolves: bool = False


def _dense(n_visible, n_hidden, *, epsilon, visible_shape, phi, rewire, rng):
    return full_pattern(n_hidden, n_visible)


def _erdos_renyi(n_visible, n_hidden, *, epsilon, visible_shape, phi, rewire, rng):
    return erdos_renyi_pattern(n_visible, n_hidden, epsilon, rng)


def _xbm(n_visible, n_hidden, *, epsilon, visible_shape, phi, rewire, rng):
    budget = erdos_renyi_nnz(n_visible, n_hidden, epsilon)  # equal weights to FixProb / SET at the same epsilon
    return xbm_pattern(n_visible, n_hidden, nnz=budget, visible_shape=visible_shape, phi=phi, rewire=rewire, rng=rng)


_REGISTRY = {
    "dense": RBMTopology("every connection: the fully connected RBM", _dense),
    "fixprob": RBMTopology("static Erdos-Renyi with epsilon (FixProb)", _erdos_renyi),
    "set": RBMTopology("Erdos-Renyi with epsilon, evolved by SET after every epoch (SET-RBM)", _erdos_renyi, True),
    "xbm": RBMTopology("static scale-free, local, small-world wiring on the data's geometry (XBM)", _xbm),
}
RBM_TOPOLOGIES: Mapping[str, RBMTopology] = MappingProxyType(_REGISTRY)
"""Every RBM topology by name (read only); the config, the CLI and the docs read this table."""
TOPOLOGY_NAMES = tuple(_REGISTRY)


def make_pattern(
    name: str,
    n_visible: int,
    n_hidden: int,
    *,
    epsilon: float = 10.0,
    visible_shape: Sequence[int] | None = None,
    phi: float = 2.5,
    rewire: float = 0.1,
    rng: int | np.random.Generator | None = None,
) -> SparsePattern:
    """The initial pattern (n_hidden x n_visible) of topology ``name`` (a key of :data:`RBM_TOPOLOGIES`).

    ``epsilon`` sizes fixprob / set / xbm (the SET-RBM reference: 10); ``visible_shape``, ``phi`` and
    ``rewire`` are XBM's (:func:`evosparse.rbm.xbm.xbm_pattern`).
    """
    if name not in RBM_TOPOLOGIES:
        raise ValueError(f"topology must be one of {', '.join(RBM_TOPOLOGIES)}; got {name!r}")
    if not (isinstance(epsilon, int | float) and np.isfinite(epsilon) and epsilon > 0):
        raise ValueError(f"epsilon must be a finite number > 0, got {epsilon!r}")
    return RBM_TOPOLOGIES[name].build(
        n_visible, n_hidden, epsilon=epsilon, visible_shape=visible_shape, phi=phi, rewire=rewire, rng=as_rng(rng)
    )


def evolve(rbm: RBM, *, zeta: float, rng: np.random.Generator, regrow: bool = True) -> np.ndarray:
    """One SET step on ``rbm`` (see the module doc); returns the ``gather`` map of :meth:`RBM.rewire`.

    With ``regrow`` nnz is unchanged; without (the last epoch) the removed connections are gone. A fully
    connected RBM has nowhere to regrow: it is left as it is (the identity map is returned).
    """
    if not 0 <= zeta < 1:
        raise ValueError(f"zeta must be in [0, 1), got {zeta}")
    pattern = rbm.pattern
    if rbm.is_dense and regrow:
        return np.arange(pattern.nnz, dtype=np.int64)
    remove = weakest_connections(rbm.weights, zeta, rule="set")
    if remove.all():  # an RBM keeps at least one connection
        remove[np.argmax(np.abs(rbm.weights))] = False
    keep = np.flatnonzero(~remove)
    count = int(remove.sum()) if regrow else 0
    new_keys = sample_free_keys(pattern.n_rows, pattern.n_cols, count, pattern.keys()[keep], rng)
    return rbm.rewire(keep, new_keys, rbm.sample_weights(count, rng))
