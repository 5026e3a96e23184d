"""Dense-to-sparse methods: L1 penalty, magnitude and OBD pruning, prune-retrain, gradual pruning."""

from evosparse.prune.convert import adopt_structure, sparsify_linear, to_sparse
from evosparse.prune.pruning import CRITERIA, SCOPES, Pruning
from evosparse.prune.saliency import HESSIANS, hessian_diagonal, magnitude_scores, obd_saliency, snip_scores
from evosparse.topology.schedule import PruningSchedule

__all__ = [
    "CRITERIA",
    "HESSIANS",
    "SCOPES",
    "Pruning",
    "PruningSchedule",
    "adopt_structure",
    "hessian_diagonal",
    "magnitude_scores",
    "obd_saliency",
    "snip_scores",
    "sparsify_linear",
    "to_sparse",
]
