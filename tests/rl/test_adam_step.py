"""The agents' direct fused-Adam step (rl.base.adam_step) against ``torch.optim.Adam(fused=True).step()``."""

from __future__ import annotations

import pytest
import torch

from evosparse.rl.base import adam_step


def _problem(seed: int, **options):
    generator = torch.Generator().manual_seed(seed)
    shapes = [(8, 5), (8,), (3, 8), (3,)]
    params = [torch.nn.Parameter(torch.randn(shape, generator=generator)) for shape in shapes]
    return params, torch.optim.Adam(params, lr=1e-2, **options), generator


@pytest.mark.parametrize("options", [{"fused": True}, {"fused": True, "weight_decay": 0.1}, {}])
def test_adam_step_updates_parameters_and_state_bit_for_bit_like_the_optimizer(options):
    ours, our_optimizer, _ = _problem(0, **options)
    reference, reference_optimizer, _ = _problem(0, **options)
    generator = torch.Generator().manual_seed(1)
    for step in range(6):
        grads = [torch.randn(p.shape, generator=generator) for p in ours]
        for i, (p, q, g) in enumerate(zip(ours, reference, grads)):
            # the last parameter gets no gradient at step 2 (skipped by both) and none before step 1 (its
            # state is created at a later step than the others')
            skip = i == 3 and step in (0, 2)
            p.grad = None if skip else g.clone()
            q.grad = None if skip else g.clone()
        adam_step(our_optimizer)
        reference_optimizer.step()
        for p, q in zip(ours, reference):
            assert torch.equal(p, q)
    ours_state, reference_state = our_optimizer.state_dict()["state"], reference_optimizer.state_dict()["state"]
    assert ours_state.keys() == reference_state.keys()
    for key in ours_state:
        for name in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(ours_state[key][name], reference_state[key][name]), (key, name)
