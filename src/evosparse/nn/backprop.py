"""A classifier's gradients on a plain ``SparseMLP`` without autograd: the small-batch fast path of training.

At the SET tutorial's batch of 40 the compiled kernels are about half of a training step; most of the rest
was per-operation overhead around them: the autograd engine (some 50 us per backward call here, plus each
node), autograd Functions, and a dozen torch calls per layer to wrap, view and allocate. :class:`CrossEntropyPass`
computes what

    logits = model(x); loss = F.cross_entropy(logits, y); loss.backward()

computes, in one Python function per direction working on numpy views: the same kernels on the same
arrays in the same order as the modules' autograd ops (``SparseLinear`` / ``forward_relu_dropout``), the
loss and its gradient with the ATen ops autograd records for ``cross_entropy`` (``log_softmax`` and
``nll_loss``), and each bias gradient with torch's own ``sum``. So the results are the same bits as the
autograd path and the dropout keys are drawn at the same moments (tests/nn/test_backprop.py).

It covers the SET recipe: a ``SparseMLP`` of numba-backend ``SparseLinear`` layers with a plain ``nn.ReLU``
(and ``SeededDropout``) after each hidden layer, a 2-D CPU float batch of more than
:data:`~evosparse.sparse.functional.SMALL_BATCH` rows, every parameter requiring a gradient, grad mode on,
no FusedSGD attached, no anomaly detection, and no hook anywhere (module hooks, global module hooks, tensor
hooks on the parameters: ``loss.backward()`` would run them). For anything else
:meth:`CrossEntropyPass.run` returns None and the caller runs autograd.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from evosparse.nn.dropout import SeededDropout, _dropout_apply, _relu_dropout_grad
from evosparse.nn.linear import SparseLinear
from evosparse.nn.mlp import SparseMLP, _global_hooks, _hooked
from evosparse.sparse import kernels
from evosparse.sparse.functional import SMALL_BATCH, check_inputs

_IGNORE = -100  # F.cross_entropy's default ignore_index
_MEAN = 1  # ATen's reduction code for "mean"
Block = tuple[SparseLinear, SeededDropout | None]


def _blocks(model: nn.Module, x: torch.Tensor) -> list[Block] | None:
    """``model``'s layers, each with the dropout after it (None after the output layer), or None if not covered."""
    if type(model) is not SparseMLP or not torch.is_grad_enabled() or x.requires_grad or x.dim() != 2:
        return None
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64) or x.shape[0] <= SMALL_BATCH:
        return None
    if _global_hooks() or _hooked(model) or _hooked(model.net) or torch.is_anomaly_enabled():
        return None
    # [SparseLinear, ReLU, (SeededDropout)] per hidden layer, then the output SparseLinear alone
    modules = list(model.net)
    blocks: list[Block] = []
    i = 0
    while i < len(modules):
        layer = modules[i]
        if type(layer) is not SparseLinear or not _plain_layer(layer):
            return None
        if i == len(modules) - 1:
            blocks.append((layer, None))
            return blocks
        if type(modules[i + 1]) is not nn.ReLU or _hooked(modules[i + 1]):
            return None
        dropout = modules[i + 2] if i + 2 < len(modules) and type(modules[i + 2]) is SeededDropout else None
        if dropout is not None and _hooked(dropout):
            return None
        blocks.append((layer, dropout))
        i += 2 if dropout is None else 3
    return None  # the last module is not a layer


def _plain_layer(layer: SparseLinear) -> bool:
    """A numba-backend layer with a bias, no FusedSGD, no hook, its parameters requiring plain gradients."""
    if _hooked(layer) or layer.backend not in ("auto", "numba") or layer.fused_update is not None:
        return False
    if layer.pattern.is_blocked:  # this path's kernels are CSR ones; autograd dispatches the blocked ones
        return False
    if layer.bias is None:
        return False
    return all(
        p.requires_grad and not p._backward_hooks and not getattr(p, "_post_accumulate_grad_hooks", None)
        for p in (layer.values, layer.bias)
    )


def _accumulate(parameter: torch.Tensor, grad: torch.Tensor) -> None:
    # As autograd's AccumulateGrad: a fresh gradient becomes .grad, or is added to the one already there.
    if parameter.grad is None:
        parameter.grad = grad
    else:
        parameter.grad.add_(grad)


class CrossEntropyPass:
    """The forward pass of ``F.cross_entropy(model(x), y)`` for a covered model; :meth:`backward` then does
    what ``loss.backward()`` would: the parameters' gradients accumulated into their ``.grad``.

    Build it with :meth:`run` (None for a model this path does not cover). Two calls, as with autograd, so
    that the caller can look at the loss (the divergence guard) before anything else happens.

    Attributes:
        logits: (batch, classes), no autograd history.
        loss: the mean cross-entropy, a 0-d tensor.
    """

    def __init__(self, blocks: list[Block], x: torch.Tensor, y: torch.Tensor) -> None:
        self._blocks = blocks
        self._inputs: list[np.ndarray] = []  # each layer's feature-major input (features x batch)
        self._outputs: list[np.ndarray] = []  # each hidden layer's feature-major output after ReLU and dropout
        self._rates: list[float] = []
        h = np.ascontiguousarray(x.detach().numpy().T)  # numpy's transposing copy, as linear_forward's
        for depth, (layer, dropout) in enumerate(blocks):
            values = layer.values.detach()
            check_inputs(x if depth == 0 else self.logits, values, layer.pattern)
            pattern = layer.pattern
            out = np.empty((pattern.n_rows, h.shape[1]), dtype=h.dtype)
            kernels.spmm(pattern.indptr, pattern.cols, values.numpy(), h, layer.bias.detach().numpy(), out)
            self._inputs.append(h)
            if depth < len(blocks) - 1:  # ReLU and dropout in place, as SparseLinear.forward_relu_dropout
                drop = dropout is not None and dropout.training and dropout.p > 0
                p = dropout.p if drop else 0.0
                key, row_offset = (dropout.draw_key(), dropout.row_offset) if drop else (0, 0)
                _dropout_apply(out.T, out.T, key, p, 1.0 / (1.0 - p), True, row_offset, True)
                self._outputs.append(out)
                self._rates.append(p)
            h = out
            self._logits_t = out
            self.logits = torch.from_numpy(out).t()  # (batch, features), the layout the modules return
        # F.cross_entropy with class indices is log_softmax, then nll_loss: the ops autograd records for it.
        with torch.no_grad():
            self._log_probs = torch.log_softmax(self.logits, 1)
            self.loss, self._total_weight = torch.ops.aten.nll_loss_forward(self._log_probs, y, None, _MEAN, _IGNORE)
        self._y = y

    @classmethod
    def run(cls, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> CrossEntropyPass | None:
        """The forward pass, or None (nothing done, no dropout key drawn) if ``model`` is not covered."""
        x = x.flatten(1)
        blocks = _blocks(model, x)
        return None if blocks is None else cls(blocks, x, y)

    def hits(self, y: torch.Tensor) -> int:
        """How many rows' largest logit is at their label: ``int((logits.argmax(1) == y).sum())``, counted by numpy
        on the pass's own (classes, batch) array (both take the first of equal maxima and a NaN as the largest):
        1.5 us instead of torch's four calls' ~9 us at batch 40."""
        return int(np.count_nonzero(self._logits_t.argmax(axis=0) == y.numpy()))

    def backward(self) -> None:
        """The backward pass (once per forward pass), by the kernels the autograd ops' backward calls."""
        if not self._inputs:
            raise RuntimeError("CrossEntropyPass.backward runs once per forward pass")
        with torch.no_grad():
            log_probs = self._log_probs
            grad_log_probs = torch.ops.aten.nll_loss_backward(
                torch.ones_like(self.loss), log_probs, self._y, None, _MEAN, _IGNORE, self._total_weight
            )
            grad = torch.ops.aten._log_softmax_backward_data(grad_log_probs, log_probs, 1, self.logits.dtype)
            dyt = grad.t().contiguous().numpy()  # as SparseLinearFunction.backward
            for depth in range(len(self._blocks) - 1, -1, -1):
                layer, pattern = self._blocks[depth][0], self._blocks[depth][0].pattern
                if depth < len(self._blocks) - 1:  # as _SparseReluDropout.backward, from the kept output
                    out = self._outputs[depth]
                    grad_out, dyt = dyt, np.empty_like(out)
                    _relu_dropout_grad(grad_out, out, 1.0 / (1.0 - self._rates[depth]), dyt)
                values = layer.values.detach().numpy()
                # as linear_backward: dX over the CSC view (not for the data), dW by SDDMM, db by torch's sum
                grad_input = None
                if depth > 0:
                    grad_input = np.empty((pattern.n_cols, dyt.shape[1]), dtype=dyt.dtype)
                    kernels.spmm_transposed(
                        pattern.csc_indptr, pattern.csc_rows, pattern.csc_perm, values, dyt, grad_input
                    )
                grad_values = torch.empty_like(layer.values)
                kernels.sddmm(pattern.indptr, pattern.cols, dyt, self._inputs[depth], grad_values.numpy())
                _accumulate(layer.values, grad_values)
                _accumulate(layer.bias, torch.from_numpy(dyt).sum(dim=1))
                dyt = grad_input
        self._inputs = []
