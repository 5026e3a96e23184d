"""``optimizer.step()`` and ``optimizer.zero_grad()`` of a fused ``torch.optim.SGD`` in one compiled call each.

At the SET tutorial's batch of 40 a training step takes ~2-3 ms, and ``torch.optim.SGD(fused=True).step()``
spent ~140 us of it (on the machine where this was written) around a ~40 us kernel: the profiler context,
the hook chains, regrouping the tensors by device and dtype, and rebuilding the argument lists. :func:`step`
calls the same kernel (``torch._fused_sgd_``) with the same arguments, so the parameters and momentum buffers
are the same bits (tests/train/test_sgd_step.py), whenever nothing that the full call would run can differ:
the optimizer is a plain ``torch.optim.SGD`` with ``fused=True`` in every group, no step hook (its own or
global), no AMP scaling, every parameter has a gradient and, with momentum, already a momentum buffer (the
first step creates them, so it goes through ``optimizer.step()``). An LR scheduler's step counter is kept as
its wrapper would. Anything else runs ``optimizer.step()`` itself.
"""

from __future__ import annotations

import torch
from torch.optim import SGD
from torch.optim import optimizer as optimizer_module


def zero_grad(optimizer: torch.optim.Optimizer) -> None:
    """``optimizer.zero_grad(set_to_none=True)``: every parameter's ``.grad`` set to None."""
    if type(optimizer) is not SGD or "zero_grad" in vars(optimizer):  # a subclass, or zero_grad replaced: theirs
        optimizer.zero_grad(set_to_none=True)
        return
    for group in optimizer.param_groups:
        for p in group["params"]:
            p.grad = None


def step(optimizer: torch.optim.Optimizer) -> bool:
    """One ``optimizer.step()``; True if it ran directly (see the module doc), False if through the optimizer."""
    arguments = _direct_arguments(optimizer)
    if arguments is None:
        optimizer.step()
        return False
    if getattr(optimizer.step, "_wrapped_by_lr_sched", False):
        optimizer._opt_called = True  # what an LR scheduler's wrapper of step() records
    with torch.no_grad():
        for params, grads, buffers, group in arguments:
            torch._fused_sgd_(
                params,
                grads,
                buffers,
                weight_decay=group["weight_decay"],
                momentum=group["momentum"],
                lr=group["lr"],
                dampening=group["dampening"],
                nesterov=group["nesterov"],
                maximize=group["maximize"],
                is_first_step=False,
                grad_scale=None,
                found_inf=None,
            )
    return True


def _direct_arguments(optimizer: torch.optim.Optimizer) -> list[tuple[list, list, list, dict]] | None:
    """Per parameter group (params, grads, momentum buffers, group), or None where the full call must run."""
    if type(optimizer) is not SGD or optimizer._optimizer_step_pre_hooks or optimizer._optimizer_step_post_hooks:
        return None
    if optimizer_module._global_optimizer_pre_hooks or optimizer_module._global_optimizer_post_hooks:
        return None
    replaced = vars(optimizer).get("step")
    if replaced is not None and not getattr(replaced, "_wrapped_by_lr_sched", False):
        return None  # step() replaced by someone else: theirs must run
    if getattr(optimizer, "grad_scale", None) is not None or getattr(optimizer, "found_inf", None) is not None:
        return None
    arguments = []
    dtype = None
    for group in optimizer.param_groups:
        if not group["fused"] or group["differentiable"] or isinstance(group["lr"], torch.Tensor):
            return None
        params, grads, buffers = group["params"], [], []
        with_momentum = group["momentum"] != 0
        for p in params:
            grad = p.grad
            if grad is None or grad.is_sparse or p.device.type != "cpu" or grad.dtype != p.dtype:
                return None
            if dtype is None:
                dtype = p.dtype
            elif p.dtype != dtype:
                return None  # one dtype, so one kernel call per group as the optimizer's own grouping gives
            grads.append(grad)
            if with_momentum:
                buffer = optimizer.state.get(p, {}).get("momentum_buffer")
                if buffer is None:
                    return None  # the first step makes the buffers: optimizer.step() does that
                buffers.append(buffer)
        if params:
            arguments.append((params, grads, buffers, group))
    return arguments
