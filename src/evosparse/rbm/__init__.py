"""Restricted Boltzmann machines on the sparse core: conditional RBMs for forecasting."""

from evosparse.rbm.connections import Connections
from evosparse.rbm.crbm import CRBM, FCRBM, ConditionalRBM, ConditionalRBMConfig, build_conditional_rbm

__all__ = ["CRBM", "FCRBM", "ConditionalRBM", "ConditionalRBMConfig", "Connections", "build_conditional_rbm"]
