"""Dense -> truly sparse: the converted network computes what the masked dense network computed."""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torch.nn.utils.prune as torch_prune

from evosparse.nn import DenseMLP, SparseLinear
from evosparse.prune import sparsify_linear, to_sparse


def test_torch_pruned_model_converts_to_the_same_outputs():
    torch.manual_seed(0)
    model = DenseMLP((20, 16, 12, 4), activation="allrelu", seed=0).double()
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            torch_prune.l1_unstructured(module, "weight", amount=0.8)
    x = torch.randn(7, 20, dtype=torch.float64)
    sparse = to_sparse(model)
    layers = [m for m in sparse.modules() if isinstance(m, SparseLinear)]
    assert len(layers) == 3 and not any(isinstance(m, torch.nn.Linear) for m in sparse.modules())
    masks = [m.weight_mask for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [layer.nnz for layer in layers] == [int(mask.sum()) for mask in masks]
    torch.testing.assert_close(sparse(x), model(x))
    for layer, mask in zip(layers, masks):
        assert torch.equal(layer.to_dense() != 0, mask.bool())


def test_mid_training_conversion_moves_optimizer_state_and_keeps_training_identical():
    torch.manual_seed(1)
    dense = DenseMLP((10, 8, 3), seed=3).double()
    masked = DenseMLP((10, 8, 3), seed=3).double()
    opt_dense = torch.optim.SGD(dense.parameters(), lr=0.1, momentum=0.9)
    opt_masked = torch.optim.SGD(masked.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(12, 10, dtype=torch.float64), torch.randint(0, 3, (12,))
    for model, optimizer in ((dense, opt_dense), (masked, opt_masked)):
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    mask = torch.rand(8, 10, generator=torch.Generator().manual_seed(0)) < 0.4
    layer = sparsify_linear(dense, "net.0", mask, opt_dense)
    assert dense.net[0] is layer and opt_dense.param_groups[0]["params"][0] is layer.values
    assert opt_dense.param_groups[0]["params"][1] is layer.bias  # the same bias Parameter, same state
    # The masked twin: weights and momentum zeroed off the mask, re-masked after every step.
    with torch.no_grad():
        masked.net[0].weight.mul_(mask)
        opt_masked.state[masked.net[0].weight]["momentum_buffer"].mul_(mask)
    for _ in range(3):
        for model, optimizer in ((dense, opt_dense), (masked, opt_masked)):
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
        with torch.no_grad():
            masked.net[0].weight.mul_(mask)
    torch.testing.assert_close(layer.to_dense(), masked.net[0].weight.detach())
    torch.testing.assert_close(dense(x), masked(x))
