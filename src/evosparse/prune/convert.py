"""From dense to truly sparse: swap ``nn.Linear`` layers for :class:`SparseLinear` layers.

A pruned dense network is still a dense matrix full of zeros; these functions turn it into one that
stores and multiplies only its connections.

* :func:`sparsify_linear` replaces one ``nn.Linear`` of a model, in place and mid-training: the bias
  Parameter object is kept, the weight Parameter is replaced by the sparse ``values`` in the optimizer's
  parameter groups, and per-element optimizer state (momentum, Adam moments) moves to the kept
  connections. The dense-to-sparse strategies call it at their first pruning step, so everything after
  it trains at sparse speed.
* :func:`to_sparse` converts a whole (trained, pruned) model, e.g. one pruned with
  ``torch.nn.utils.prune`` (its ``weight_mask`` buffers are honoured).
* :func:`adopt_structure` prepares a freshly built model for a checkpoint of a run whose layers were
  converted or shrunk, so that ``load_state_dict`` and the optimizer's state fit.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from evosparse.nn.linear import SparseLinear
from evosparse.topology.rewire import replace_parameter


def _parent(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    parent_name, _, attribute = name.rpartition(".")
    return (model.get_submodule(parent_name) if parent_name else model), attribute


def sparsify_linear(
    model: nn.Module,
    name: str,
    mask: torch.Tensor | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    backend: str = "auto",
) -> SparseLinear:
    """Replace the ``nn.Linear`` submodule ``name`` by a SparseLinear with its weights where ``mask`` is true.

    ``mask`` None: keep the nonzero weights. Returns the new layer.
    """
    parent, attribute = _parent(model, name)
    linear = getattr(parent, attribute)
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"{name} is a {type(linear).__name__}, not an nn.Linear")
    weight = linear.weight.detach()
    mask = (weight != 0) if mask is None else mask.to(device=weight.device, dtype=torch.bool)
    layer = SparseLinear.from_dense(weight, mask, None, backend=backend)
    layer.bias = linear.bias  # the same Parameter: the optimizer's bias state stays valid as it is
    rows = torch.from_numpy(layer.pattern.rows).long()
    cols = torch.from_numpy(layer.pattern.cols).long()
    replace_parameter(optimizer, linear.weight, layer.values, remap=lambda t: t[rows, cols].clone())
    setattr(parent, attribute, layer)
    return layer


def to_sparse(model: nn.Module, *, backend: str = "auto") -> nn.Module:
    """A copy of ``model`` with every ``nn.Linear`` replaced by a SparseLinear of its nonzero weights.

    Layers pruned with ``torch.nn.utils.prune`` keep exactly their mask (a surviving weight that happens
    to be 0.0 stays a connection). The copy computes the same outputs as the masked dense model.
    """
    # torch.nn.utils.prune leaves ``weight`` as a computed (non-leaf) tensor, which deepcopy refuses.
    memo = {
        id(module.weight): module.weight.detach().clone()
        for module in model.modules()
        if isinstance(module, nn.Linear) and not module.weight.is_leaf
    }
    sparse = copy.deepcopy(model, memo)
    names = [name for name, module in sparse.named_modules() if isinstance(module, nn.Linear)]
    for name in names:
        linear = sparse.get_submodule(name)
        mask = getattr(linear, "weight_mask", None)
        weight = linear.weight.detach()  # for torch-pruned layers: weight_orig * weight_mask
        plain = nn.Linear(
            linear.in_features,
            linear.out_features,
            bias=linear.bias is not None,
            dtype=weight.dtype,
            device=weight.device,
        )
        with torch.no_grad():
            plain.weight.copy_(weight)
            if linear.bias is not None:
                plain.bias.copy_(linear.bias.detach())
        parent, attribute = _parent(sparse, name)
        setattr(parent, attribute, plain)
        sparsify_linear(sparse, name, mask, backend=backend)
    return sparse


def adopt_structure(
    model: nn.Module, state: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer | None = None
) -> None:
    """Make a freshly built ``model`` match the layer types and sizes saved in the state dict ``state``.

    * an ``nn.Linear`` saved as a SparseLinear (``<name>.values`` in ``state``) is converted;
    * if the run resized layers (neuron importance pruning marks them with ``<name>.shape``), those layers
      and every parameter saved with another shape (biases, SReLU parameters) take the saved shapes.

    Values are not loaded here (``load_state_dict`` does that next); the optimizer follows every change.
    """
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.Linear) and f"{name}.values" in state:
            sparsify_linear(model, name, None, optimizer)  # the saved pattern replaces this one on load
    if not any(key.endswith(".shape") for key in state):
        return  # no layer was resized: every other shape must match, and load_state_dict checks that
    for name, module in model.named_modules():
        if isinstance(module, SparseLinear) and f"{name}.shape" in state:
            n_out, n_in = (int(v) for v in state[f"{name}.shape"])
            module.out_features, module.in_features = n_out, n_in
        for parameter_name, parameter in module.named_parameters(recurse=False):
            if isinstance(module, SparseLinear) and parameter_name == "values":
                continue  # the layer's own loader adopts a saved pattern of any nnz
            saved = state.get(f"{name}.{parameter_name}" if name else parameter_name)
            if saved is not None and saved.shape != parameter.shape:
                parameter.data = torch.zeros(saved.shape, dtype=parameter.dtype, device=parameter.device)
        if hasattr(module, "num_features") and hasattr(module, "t_left"):
            module.num_features = module.t_left.shape[0]
