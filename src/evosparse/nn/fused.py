"""``FusedSGD``: each sparse layer's SGD step inside its backward pass, with no gradient array.

With plain ``torch.optim.SGD`` a training step sweeps a wide layer's connections several times: the
backward pass writes dW (nnz floats), then the optimizer reads dW, the weights and the momentum and writes
the last two. At batches of a few samples these sweeps, not arithmetic, are the cost, and dW is one more
nnz-long array in memory. Fused, the backward pass reads each connection's index, weight and momentum
once, computes its gradient, adds its share to dX (with the weight before the step) and writes the new
weight and momentum (:func:`evosparse.sparse.kernels.backward_csr_sgd`).

The optimizer stays in charge of everything else: the hyperparameters are read from the parameter
group of each layer's ``values`` at every backward pass (so learning-rate schedules apply), the momentum
lives in ``optimizer.state[values]["momentum_buffer"]`` as usual (checkpoints and topology updates carry
it), and ``optimizer.step()`` updates the other parameters (biases, dense layers) and skips the fused
``values``, which get no ``.grad``. The result equals unfused training to float rounding.

Only backward passes inside :meth:`FusedSGD.backward` (or :meth:`FusedSGD.armed`) update; any other
backward pass (``torch.autograd.grad`` for a saliency, say) computes gradients as usual. Not for code that
reads, clips or all-reduces the gradients of ``values`` between backward and step.

Example::

    >>> model = SparseMLP((20, 50, 3), epsilon=5, seed=0)
    >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    >>> fused = FusedSGD(model, optimizer)
    >>> loss = model(torch.randn(4, 20)).square().mean()
    >>> optimizer.zero_grad(); fused.backward(loss); optimizer.step()
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from evosparse.nn.linear import SparseLinear
from evosparse.sparse.functional import SGDStep


class FusedSGD:
    """Fuse ``optimizer``'s step on the weights of ``model``'s sparse layers into their backward pass.

    Args:
        model: a module whose :class:`SparseLinear` layers' ``values`` are parameters of ``optimizer``.
        optimizer: a ``torch.optim.SGD`` (any momentum, dampening, weight decay, Nesterov, maximize).

    Raises:
        TypeError: ``optimizer`` is not SGD.
        ValueError: no sparse layer's ``values`` is in the optimizer.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        if not isinstance(optimizer, torch.optim.SGD):
            raise TypeError(f"FusedSGD needs a torch.optim.SGD optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.active = False
        self.layers = [m for m in model.modules() if isinstance(m, SparseLinear) and self._group(m) is not None]
        if not self.layers:
            raise ValueError("FusedSGD: no sparse layer of the model has its values in the optimizer")
        for layer in self.layers:
            layer.fused_update = self._updater(layer)

    def _group(self, layer: SparseLinear) -> dict | None:
        # Looked up at every call: pruning replaces a layer's values Parameter (and the optimizer's entry).
        for group in self.optimizer.param_groups:
            if any(p is layer.values for p in group["params"]):
                return group
        return None

    def _updater(self, layer: SparseLinear):
        def update() -> SGDStep | None:
            if not self.active:
                return None
            return self.step_for(layer)

        return update

    def step_for(self, layer: SparseLinear) -> SGDStep:
        """The SGD step of ``layer.values`` now (its group's hyperparameters, its momentum buffer)."""
        group = self._group(layer)
        if group is None:
            raise ValueError("FusedSGD: the layer's values are no longer in the optimizer")
        momentum = float(group["momentum"])
        buffer, first = None, False
        if momentum != 0:
            state = self.optimizer.state[layer.values]
            buffer = state.get("momentum_buffer")
            if buffer is None:  # as torch's first step: the buffer starts as the gradient
                buffer = torch.empty_like(layer.values, memory_format=torch.contiguous_format)
                state["momentum_buffer"] = buffer
                first = True
        return SGDStep(
            lr=float(group["lr"]),
            weight_decay=float(group["weight_decay"]),
            momentum=momentum,
            dampening=float(group["dampening"]),
            nesterov=bool(group["nesterov"]),
            maximize=bool(group.get("maximize", False)),
            momentum_buffer=buffer,
            first_step=first,
        )

    @contextmanager
    def armed(self) -> Iterator[None]:
        """Backward passes inside this block apply the sparse layers' SGD steps."""
        self.active = True
        try:
            yield
        finally:
            self.active = False

    def backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()`` with the fused steps (then call ``optimizer.step()`` for the other parameters)."""
        with self.armed():
            loss.backward()

    def remove(self) -> None:
        """Stop fusing: the layers compute their gradients for the optimizer again."""
        for layer in self.layers:
            layer.fused_update = None
        self.layers = []
