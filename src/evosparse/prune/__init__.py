"""Pruning: dense-to-sparse methods (L1 penalty, magnitude and OBD pruning, prune-retrain, gradual pruning,
SNIP at initialisation), their schedule, and neuron importance pruning of sparse networks."""

from evosparse.prune.convert import adopt_structure, sparsify_linear, to_sparse
from evosparse.prune.neuron_importance import NeuronImportance, neuron_strength, remove_neurons
from evosparse.prune.pruning import CRITERIA, SCOPES, Pruning
from evosparse.prune.saliency import HESSIANS, hessian_diagonal, magnitude_scores, obd_saliency, snip_scores
from evosparse.prune.schedule import PRUNING_KINDS, PruningSchedule
from evosparse.prune.snip import SNIP

__all__ = [
    "CRITERIA",
    "HESSIANS",
    "PRUNING_KINDS",
    "SCOPES",
    "SNIP",
    "NeuronImportance",
    "Pruning",
    "PruningSchedule",
    "adopt_structure",
    "hessian_diagonal",
    "magnitude_scores",
    "neuron_strength",
    "obd_saliency",
    "remove_neurons",
    "snip_scores",
    "sparsify_linear",
    "to_sparse",
]
