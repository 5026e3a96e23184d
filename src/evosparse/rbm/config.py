"""``RBMConfig``: every setting of an ``evosparse rbm train`` run, with the SET-RBM reference's defaults.

The defaults are the reference setting of the SET paper's RBM experiment on COIL20 (Mocanu et al. 2018,
code ``SET-RBM-Sparse-Python-Data-Structures``): 200 hidden units, epsilon 10, zeta 0.3, CD-1 (the
code's "Markov chain of length 2"), learning rate 0.1, weight decay 2e-7, batch 10, no momentum, weights
N(0, 0.05^2); the reference trains 1000 epochs (here the default is 100: give ``--epochs 1000``).
"""

from __future__ import annotations

from dataclasses import dataclass

from evosparse._config import Config, at_least, between, non_negative, one_of, param, positive
from evosparse.data import DATASETS
from evosparse.rbm.model import VISIBLE_TYPES
from evosparse.rbm.topology import TOPOLOGY_NAMES

DTYPE_NAMES = ("float32", "float64")


@dataclass(frozen=True)
class RBMConfig(Config):
    """Settings of an RBM training run (SET-RBM reference defaults, Mocanu et al. 2018)."""

    toml_table = "rbm"

    # ---- data ----
    dataset: str = param("coil20", "data set (a name of evosparse.data.DATASETS)", rule=one_of(sorted(DATASETS)))
    data_dir: str | None = param(None, "folder laid out like shared/data, searched before the cache")
    download: bool = param(True, "download the data set if it is not on disk")
    binarize: bool = param(False, "threshold the data at 0.5: binary vectors, whose AIS log-likelihood is a "
                           "probability (binarised MNIST, the RBM likelihood literature's data)")  # fmt: skip
    train_samples: int = param(0, "train on a random subset of this many training samples, drawn with "
                               "data_seed (0: the whole training set)", rule=at_least(0))  # fmt: skip
    data_seed: int = param(0, "seed of the train / test split of data published without one", rule=at_least(0))
    # ---- model ----
    visible: str = param("bernoulli", "visible units: bernoulli ([0, 1] data) or gaussian (standardised data)",
                         rule=one_of(VISIBLE_TYPES))  # fmt: skip
    hidden: int = param(200, "hidden units (reference: 200)", rule=at_least(1))
    topology: str = param("set", "connectivity (evosparse.rbm.RBM_TOPOLOGIES)", rule=one_of(TOPOLOGY_NAMES))
    epsilon: float = param(10.0, "Erdos-Renyi sparsity: nnz = epsilon (n_visible + n_hidden) (reference: 10)",
                           rule=positive)  # fmt: skip
    zeta: float = param(0.3, "fraction of each sign's weakest weights SET rewires per epoch (reference: 0.3)",
                        rule=between(0, 1, high_open=True))  # fmt: skip
    phi: float = param(2.5, "XBM: power-law coefficient of the hidden degrees", rule=between(1, 10, low_open=True))
    rewire: float = param(0.1, "XBM: probability that a local connection becomes a random shortcut",
                          rule=between(0, 1))  # fmt: skip
    init_std: float = param(0.05, "standard deviation of initial and regrown weights (reference: 0.05)",
                            rule=non_negative)  # fmt: skip
    dtype: str = param("float32", "floating point type of weights and activations", rule=one_of(DTYPE_NAMES))
    # ---- learning ----
    cd_steps: int = param(1, "Gibbs steps k of CD-k (reference: 1, its 'Markov chain of length 2')", rule=at_least(1))
    persistent: bool = param(False, "persistent CD (Tieleman 2008) instead of CD restarted at the data")
    lr: float = param(0.1, "learning rate (reference: 0.1)", rule=positive)
    momentum: float = param(0.0, "momentum (reference: 0)", rule=between(0, 1, high_open=True))
    weight_decay: float = param(2e-7, "L2 weight decay of the weights (reference: 2e-7)", rule=non_negative)
    batch_size: int = param(10, "mini-batch size (reference: 10)", rule=at_least(1))
    epochs: int = param(100, "training epochs (reference: 1000)", rule=at_least(1))
    # ---- run ----
    seed: int = param(0, "seed of every random stream of the run (topology, weights, sampling, shuffling)",
                      rule=at_least(0))  # fmt: skip
    ais_runs: int = param(0, "AIS chains for the test log-likelihood at the end (0: no AIS)", rule=at_least(0))
    ais_betas: int = param(10000, "AIS intermediate distributions (Salakhutdinov and Murray: 14500)",
                           rule=at_least(10))  # fmt: skip
    threads: int | None = param(None, "CPU threads (None: 1 for small models, else all)", rule=at_least(1))
    out_dir: str | None = param(None, "run folder (default runs/rbm/<dataset>-<topology>-h<hidden>-s<seed>)")

    def validate(self) -> None:
        if self.ais_runs == 1:
            raise ValueError("ais_runs must be 0 (no AIS) or an integer >= 2, got 1")
        if self.binarize and self.visible != "bernoulli":
            raise ValueError(f"binarize=true makes binary data for visible='bernoulli'; got visible={self.visible!r}")
