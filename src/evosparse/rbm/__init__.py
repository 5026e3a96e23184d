"""Sparse restricted Boltzmann machines: truly sparse weights, CD / PCD learning, SET and XBM topologies.

Public names (what the CLI, the run folders, online learning and forecasting build on):

* :class:`RBM` -- Bernoulli-Bernoulli or Gaussian-Bernoulli RBM whose weights are a ``SparsePattern`` +
  values (``pattern=None``: dense). Batch-major methods ``hidden_probabilities(v)``, ``sample_hidden(v, rng)``,
  ``visible_mean(h)``, ``sample_visible(h, rng)``, ``gibbs(v, steps=, rng=)``, ``sample(n, steps=, rng=)``,
  ``free_energy(v)``, ``energy(v, h)``, ``to_dense()``, ``rewire(keep, new_keys, new_weights)``,
  ``state_dict()`` / ``RBM.from_state_dict(state)``; feature-major ``*_t`` methods for learners.
* :class:`ContrastiveDivergence` -- CD-k / PCD learner with momentum and weight decay (a sparse model's CD-k
  epoch runs as one compiled call, :mod:`evosparse.rbm.fused`):
  ``step(rbm, batch) -> reconstruction error``, ``epoch(rbm, x, batch_size=, rng=)``, ``remap(gather)``,
  ``state_dict()`` / ``load_state_dict()``.
* :data:`RBM_TOPOLOGIES` (dense, fixprob, set, xbm), :func:`make_pattern`, :func:`evolve` (SET for RBMs),
  :func:`xbm_pattern`, :func:`power_law_degrees`.
* Evaluation: :func:`reconstruction_error`, :func:`pseudo_log_likelihood`, :func:`exact_log_partition`,
  :func:`ais_log_partition` (:class:`AISResult`), :func:`log_likelihood`.
* Runs: :class:`RBMConfig`, :func:`train_rbm`, :func:`load_run`, :func:`format_summary`; pictures:
  :func:`plot_samples`, :func:`plot_filters`, :func:`plot_history`.
* Online learning (:mod:`evosparse.rbm.online`): :class:`OnlineLearner` with :class:`OnlineConfig` -- plain
  online CD, experience replay, OCD_GR (generative replay); :func:`stream_order`.
* Forecasting: :class:`CRBM`, :class:`FCRBM` (:mod:`evosparse.rbm.crbm`, weights as :class:`Connections`,
  dense or sparse with SET), and the comparison with baselines in :mod:`evosparse.rbm.forecast`.
"""

from evosparse.rbm.cd import ContrastiveDivergence
from evosparse.rbm.config import RBMConfig
from evosparse.rbm.connections import Connections
from evosparse.rbm.crbm import CRBM, FCRBM, ConditionalRBM, ConditionalRBMConfig, build_conditional_rbm
from evosparse.rbm.evaluation import (
    AISResult,
    LikelihoodResult,
    ais_log_partition,
    exact_log_partition,
    log_likelihood,
    pseudo_log_likelihood,
    reconstruction_error,
)
from evosparse.rbm.model import RBM, VISIBLE_TYPES, full_pattern
from evosparse.rbm.online import OnlineConfig, OnlineLearner, stream_order
from evosparse.rbm.plots import plot_filters, plot_history, plot_samples
from evosparse.rbm.run import RBMRunResult, format_summary, load_run, train_rbm
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
    "AISResult",
    "ContrastiveDivergence",
    "LikelihoodResult",
    "RBMConfig",
    "RBMRunResult",
    "RBMTopology",
    "ais_log_partition",
    "evolve",
    "exact_log_partition",
    "format_summary",
    "full_pattern",
    "load_run",
    "log_likelihood",
    "make_pattern",
    "plot_filters",
    "plot_history",
    "plot_samples",
    "power_law_degrees",
    "pseudo_log_likelihood",
    "reconstruction_error",
    "train_rbm",
    "xbm_pattern",
]
