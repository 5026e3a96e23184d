"""Sparse agents: density 1 equals dense; topology updates keep actor, critics, targets and Adam consistent."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from evosparse.nn import SparseLinear
from evosparse.rl import DQN, SAC, TD3
from evosparse.rl.networks import build_mlp, layer_densities, weight_layers
from evosparse.rl.topology import follow_topology

SMALL = {"actor_hidden": (16, 16), "critic_hidden": (16, 16), "learning_starts": 50, "batch_size": 32}


# One torch and one kernel thread: RL's small layers gain nothing from more, and on a busy machine a
# multi-threaded kernel call can wait a whole scheduler slice (the shared fixture in tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(("algo", "env"), [(TD3, "Pendulum-v1"), (SAC, "Pendulum-v1"), (DQN, "CartPole-v1")])
def test_sparse_agent_at_density_one_equals_the_dense_agent_step_for_step(algo, env):
    dense = algo(env, seed=1, **SMALL)
    sparse = algo(env, seed=1, strategy="static", **SMALL)  # SparseMLP networks holding every connection
    for name, network in dense.networks.items():
        twins = weight_layers(sparse.networks[name])
        assert all(isinstance(layer, SparseLinear) for layer in twins)
        for layer, twin in zip(weight_layers(network), twins):
            assert torch.equal(layer.weight, twin.to_dense()) and torch.equal(layer.bias, twin.bias)
    probe = np.random.default_rng(0).normal(size=(8, *dense.observation_space.shape)).astype(np.float32)
    for _ in range(5):  # 250 environment steps, 200 updates; the kernels differ only in rounding
        dense.learn(50)
        sparse.learn(50)
        assert dense.logs.keys() == sparse.logs.keys()
        for key, value in dense.logs.items():
            assert sparse.logs[key] == pytest.approx(value, rel=1e-3, abs=1e-4), key
        np.testing.assert_allclose(dense.predict(probe)[0], sparse.predict(probe)[0], atol=1e-4)
    assert np.array_equal(dense.buffer.actions, sparse.buffer.actions) or algo is not DQN


def test_layer_densities_follow_erdos_renyi_and_meet_the_budget():
    sizes = [3, 256, 256, 1]
    densities = layer_densities(sizes, 0.1)
    totals = [3 * 256, 256 * 256, 256]
    assert sum(d * t for d, t in zip(densities, totals)) == pytest.approx(0.1 * sum(totals), rel=1e-6)
    assert densities[0] == 1.0 and densities[2] == 1.0 and densities[1] < 0.1  # small layers stay dense
    model = build_mlp(sizes, density=0.1, sparse=True, rng=np.random.default_rng(0))
    nnz = sum(layer.nnz for layer in weight_layers(model))
    assert abs(nnz - 0.1 * sum(totals)) <= len(totals)


def _patterns(module):
    return [layer.pattern.keys() for layer in weight_layers(module)]


def _check_consistent(online, targets, optimizer, nnz):
    for target in targets:
        for a, b in zip(_patterns(online), _patterns(target)):
            assert np.array_equal(a, b)
    layers = weight_layers(online)
    assert [layer.nnz for layer in layers] == nnz
    params = {id(p) for group in optimizer.param_groups for p in group["params"]}
    for layer in layers:
        assert id(layer.values) in params
        state = optimizer.state.get(layer.values, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                assert state[key].shape == layer.values.shape


@pytest.mark.parametrize("strategy", ["set", "rigl"])
def test_td3_topology_updates_keep_networks_targets_and_adam_consistent(strategy):
    agent = TD3(
        "Pendulum-v1",
        seed=0,
        strategy=strategy,
        actor_density=0.5,
        critic_density=0.3,
        update_every=50,
        zeta=0.2,
        policy_delay=1,
        **SMALL,
    )
    nnz = {name: [layer.nnz for layer in weight_layers(agent.networks[name])] for name in ("actor", "critic")}
    before = {name: _patterns(agent.networks[name]) for name in ("actor", "critic")}
    agent.learn(300)
    # Marks 50, 100, ..., 300 (the first update, at step 51, catches up with mark 50).
    assert agent.topologies["critic"].n_changes == 6 and agent.topologies["actor"].n_changes == 6
    _check_consistent(agent.actor, [agent.actor_target], agent.actor_optimizer, nnz["actor"])
    _check_consistent(agent.critic, [agent.critic_target], agent.critic_optimizer, nnz["critic"])
    for name in ("actor", "critic"):  # hidden layers have empty positions, so they were rewired
        changed = [not np.array_equal(a, b) for a, b in zip(before[name], _patterns(agent.networks[name]))]
        assert changed[1]


def test_one_update_moves_weights_and_moments_with_their_connections():
    agent = SAC(
        "Pendulum-v1",
        seed=0,
        strategy="set",
        actor_density=0.5,
        critic_density=0.5,
        update_every=1000,
        zeta=0.3,
        **SMALL,
    )
    agent.learn(120)  # 70 updates: Adam moments are nonzero
    topology = agent.topologies["critic"]
    layer = agent.critic.q1.net[2]
    keys, values = layer.pattern.keys(), layer.values.detach().clone()
    moment = agent.critic_optimizer.state[layer.values]["exp_avg"].clone()
    target = agent.critic_target.q1.net[2]
    target_values = target.values.detach().clone()
    assert topology.step(1000)  # crosses the first multiple of update_every
    new_keys, new_values = layer.pattern.keys(), layer.values.detach()
    new_moment = agent.critic_optimizer.state[layer.values]["exp_avg"]
    assert new_keys.shape == keys.shape and not np.array_equal(new_keys, keys)
    # New connections start at zero with zero moments (zero growth); trained survivors are never exactly 0.
    grown = new_values == 0
    n_removed = int(0.3 * (values > 0).sum()) + int(0.3 * (values < 0).sum())
    assert int(grown.sum()) == n_removed and torch.all(new_moment[grown] == 0)
    survivors = (~grown).numpy()
    old_position = np.searchsorted(keys, new_keys[survivors])
    assert np.array_equal(keys[old_position], new_keys[survivors])
    torch.testing.assert_close(new_values[survivors], values[old_position], rtol=0, atol=0)
    torch.testing.assert_close(new_moment[survivors], moment[old_position], rtol=0, atol=0)
    # The target follows: the same pattern object; positions present before keep the target's own values,
    # new positions take the online value.
    assert target.pattern is layer.pattern
    present = np.isin(new_keys, keys)
    torch.testing.assert_close(
        target.values.detach()[present], target_values[np.searchsorted(keys, new_keys[present])], rtol=0, atol=0
    )
    assert torch.all(target.values.detach()[~present] == new_values[~present])
    assert not topology.step(1500)  # no new multiple crossed


def test_follow_topology_maps_target_values_without_a_dense_copy():
    rng = np.random.default_rng(0)
    online = build_mlp([4, 6, 2], density=0.5, sparse=True, rng=rng)
    target = build_mlp([4, 6, 2], density=0.5, sparse=True, rng=rng)
    layer, twin = weight_layers(online)[0], weight_layers(target)[0]
    from evosparse.sparse.pattern import SparsePattern

    old = twin.pattern.keys()
    keep = old[::2]  # half the target's connections survive, plus two new positions
    free = np.setdiff1d(np.arange(24), old)[:2]
    keys = np.sort(np.concatenate([keep, free]))
    layer.set_pattern(SparsePattern.from_sorted_keys(keys, 6, 4), torch.arange(len(keys), dtype=torch.float32))
    old_values = twin.values.detach().clone()
    follow_topology(online, target)
    by_key = dict(zip(old.tolist(), old_values.tolist()))
    expected = [by_key[k] if k in by_key else float(i) for i, k in enumerate(keys.tolist())]
    assert twin.values.detach().tolist() == pytest.approx(expected)


def test_gmp_prunes_the_dense_agent_to_the_target_and_converts_the_targets():
    agent = TD3(
        "Pendulum-v1",
        seed=0,
        strategy="gmp",
        actor_density=0.3,
        critic_density=0.2,
        update_every=50,
        stop_after=200,
        **SMALL,
    )
    assert all(isinstance(layer, nn.Linear) for layer in weight_layers(agent.actor))
    agent.learn(300)
    for online, target, density in ((agent.actor, agent.actor_target, 0.3), (agent.critic, agent.critic_target, 0.2)):
        layers = weight_layers(online)
        assert all(isinstance(layer, SparseLinear) for layer in layers + weight_layers(target))
        stored = sum(layer.nnz for layer in layers)
        dense = sum(layer.in_features * layer.out_features for layer in layers)
        assert stored == pytest.approx(density * dense, abs=2 * len(layers))
    _check_consistent(
        agent.actor, [agent.actor_target], agent.actor_optimizer, [l.nnz for l in weight_layers(agent.actor)]
    )
    _check_consistent(
        agent.critic, [agent.critic_target], agent.critic_optimizer, [l.nnz for l in weight_layers(agent.critic)]
    )
    counts = agent.parameter_counts()
    assert counts["actor"]["weights"] < 0.31 * counts["actor"]["dense_weights"]


def test_stop_after_freezes_the_topology():
    agent = TD3(
        "Pendulum-v1",
        seed=0,
        strategy="set",
        actor_density=0.5,
        critic_density=0.5,
        update_every=50,
        stop_after=120,
        policy_delay=1,
        **SMALL,
    )
    agent.learn(300)
    assert agent.topologies["critic"].n_changes == 2  # at steps 50 and 100, none at or after 120
