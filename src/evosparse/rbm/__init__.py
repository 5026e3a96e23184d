"""Sparse restricted Boltzmann machines: truly sparse weights, CD / PCD learning, SET and XBM topologies.

Public names (what the CLI, the run folders, online learning and forecasting build on):

* :class:`RBM` -- Bernoulli-Bernoulli or Gaussian-Bernoulli RBM whose weights are a ``SparsePattern`` +
  values (``pattern=None``: dense). Batch-major methods ``hidden_probabilities(v)``, ``sample_hidden(v, rng)``,
  ``visible_mean(h)``, ``sample_visible(h, rng)``, ``gibbs(v, steps=, rng=)``, ``sample(n, steps=, rng=)``,
  ``free_energy(v)``, ``energy(v, h)``, ``to_dense()``, ``rewire(keep, new_keys, new_weights)``,
  ``state_dict()`` / ``RBM.from_state_dict(state)``; feature-major ``*_t`` methods for learners.
* :class:`ContrastiveDivergence` -- CD-k / PCD learner with momentum and weight decay:
  ``step(rbm, batch) -> reconstruction error``, ``epoch(rbm, x, batch_size=, rng=)``, ``remap(gather)``,
  ``state_dict()`` / ``load_state_dict()``.
* :data:`RBM_TOPOLOGIES` (dense, fixprob, set, xbm), :func:`make_pattern`, :func:`evolve` (SET for RBMs),
  :func:`xbm_pattern`, :func:`power_law_degrees`.
* Online learning (:mod:`evosparse.rbm.online`): :class:`OnlineLearner` with :class:`OnlineConfig` -- plain
  online CD, experience replay, OCD_GR (generative replay); :func:`stream_order`.
* Forecasting: :class:`CRBM`, :class:`FCRBM` (:mod:`evosparse.rbm.crbm`, weights as :class:`Connections`,
  dense or sparse with SET), and the comparison with baselines in :mod:`evosparse.rbm.forecast`.
"""

from evosparse.rbm.cd import ContrastiveDivergence
from evosparse.rbm.connections import Connections
from evosparse.rbm.crbm import CRBM, FCRBM, ConditionalRBM, ConditionalRBMConfig, build_conditional_rbm
from evosparse.rbm.model import RBM, VISIBLE_TYPES, full_pattern
from evosparse.rbm.online import OnlineConfig, OnlineLearner, stream_order
from evosparse.rbm.topology import RBM_TOPOLOGIES, TOPOLOGY_NAMES, RBMTopology, evolve, make_pattern
from evosparse.rbm.xbm import power_law_degrees, xbm_pattern

__all__ = [
    "CRBM",
    "FCRBM",
    "ConditionalRBM",
    "ConditionalRBMConfig",
    "Connections",
    "OnlineConfig",
    "OnlineLearner",
    "build_conditional_rbm",
    "stream_order",
    "RBM",
    "RBM_TOPOLOGIES",
    "TOPOLOGY_NAMES",
    "VISIBLE_TYPES",
    "ContrastiveDivergence",
    "RBMTopology",
    "evolve",
    "full_pattern",
    "make_pattern",
    "power_law_degrees",
    "xbm_pattern",
]
