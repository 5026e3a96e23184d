"""Replay buffer: storage, termination vs truncation, n-step returns by hand and against a slow reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evosparse.rl import ReplayBuffer

GAMMA = 0.5


def _fill(buffer, rewards, terminated, truncated, n_envs=1):
    """Add steps t = 0, 1, ... with obs = t (per env: 100 * env + t) and next_obs = obs + 0.5."""
    for t, (r, term, trunc) in enumerate(zip(rewards, terminated, truncated)):
        obs = np.array([[100 * e + t] for e in range(n_envs)], dtype=np.float32)
        buffer.add(
            obs,
            np.zeros((n_envs, 1), np.float32),
            np.full(n_envs, r),
            obs + 0.5,
            np.full(n_envs, term),
            np.full(n_envs, trunc),
        )


def _sample_rows(buffer, rows):
    obs, _, returns, next_obs, discounts = buffer.gather(np.asarray(rows))
    return obs.numpy()[:, 0], returns.numpy(), next_obs.numpy()[:, 0], discounts.numpy()


def test_one_step_termination_cuts_bootstrap_and_truncation_does_not():
    buffer = ReplayBuffer(10, (1,), (1,), gamma=GAMMA)
    _fill(buffer, rewards=[1.0, 2.0, 3.0], terminated=[False, True, False], truncated=[False, False, True])
    obs, returns, next_obs, discounts = _sample_rows(buffer, [0, 1, 2])
    assert obs.tolist() == [0, 1, 2] and next_obs.tolist() == [0.5, 1.5, 2.5]
    assert returns.tolist() == [1.0, 2.0, 3.0]
    # d = gamma (1 - terminated): the truncated step (2) still bootstraps from its real next observation.
    assert discounts.tolist() == [GAMMA, 0.0, GAMMA]


def test_n_step_returns_by_hand():
    buffer = ReplayBuffer(10, (1,), (1,), gamma=GAMMA, n_step=3)
    # Steps 0-4: rewards 1, 2, 4, 8, 16; step 3 terminates, steps 4 ends by truncation.
    _fill(buffer, [1.0, 2.0, 4.0, 8.0, 16.0], [False, False, False, True, False], [False] * 4 + [True])
    obs, returns, next_obs, discounts = _sample_rows(buffer, [0, 1, 2, 3, 4])
    # From 0: 1 + 0.5 * 2 + 0.25 * 4 = 3, bootstrap from next_obs of step 2 with 0.5^3.
    # From 1: 2 + 0.5 * 4 + 0.25 * 8 = 6, step 3 terminates -> discount 0.
    # From 2: 4 + 0.5 * 8 = 8, stops at the termination of step 3 -> discount 0.
    # From 3: 8, terminal.
    # From 4: 16, truncated and newest: one step, bootstrap with 0.5 from the real final observation.
    assert returns.tolist() == [3.0, 6.0, 8.0, 8.0, 16.0]
    assert next_obs.tolist() == [2.5, 3.5, 3.5, 3.5, 4.5]
    assert discounts.tolist() == [0.125, 0.0, 0.0, 0.0, 0.5]


def test_n_step_stops_at_truncation_and_at_the_newest_step():
    buffer = ReplayBuffer(10, (1,), (1,), gamma=GAMMA, n_step=3)
    _fill(buffer, [1.0, 2.0, 4.0, 8.0], [False] * 4, [False, True, False, False])
    _, returns, next_obs, discounts = _sample_rows(buffer, [0, 2, 3])
    # From 0: 1 + 0.5 * 2, the episode was truncated at step 1: bootstrap (0.25) from its final observation.
    # From 2: 4 + 0.5 * 8, only two steps stored so far: bootstrap with 0.25 from step 3's next observation.
    assert returns.tolist() == [2.0, 8.0, 8.0]
    assert next_obs.tolist() == [1.5, 3.5, 3.5]
    assert discounts.tolist() == [0.25, 0.25, 0.5]


def test_columns_per_environment_and_wrap_around():
    buffer = ReplayBuffer(6, (1,), (1,), gamma=GAMMA, n_envs=2, n_step=2)  # 3 steps per environment
    _fill(buffer, [1.0, 2.0, 4.0, 8.0], [False] * 4, [False] * 4, n_envs=2)
    assert len(buffer) == 6 and buffer.full and buffer.pos == 1
    # Step 3 overwrote step 0 (row pair 0, 1); environment 1's step 1 is flat row 3.
    obs, returns, next_obs, _ = _sample_rows(buffer, [0, 1, 3, 5])
    assert obs.tolist() == [3, 103, 101, 102]
    # The 2-step return from step 2 (row 5, env 1) continues with step 3 (rows 0-1 after the wrap).
    assert returns.tolist() == [8.0, 8.0, 2.0 + 0.5 * 4.0, 4.0 + 0.5 * 8.0]
    assert next_obs.tolist() == [3.5, 103.5, 102.5, 103.5]


def _reference_n_step(rewards, ended, terminated, start, newest, n, gamma):
    """The definition, one step at a time, in one environment's time order."""
    total, k = 0.0, 0
    for j in range(n):
        t = start + j
        if t > newest:
            break
        total += gamma**j * rewards[t]
        k += 1
        if ended[t]:
            break
    last = start + k - 1
    return total, gamma**k * (1.0 - terminated[last]), last


@settings(max_examples=40, deadline=None)
@given(
    steps=st.integers(1, 30),
    capacity=st.integers(1, 12),
    n=st.integers(1, 4),
    seed=st.integers(0, 10_000),
)
def test_n_step_agrees_with_the_slow_reference(steps, capacity, n, seed):
    rng = np.random.default_rng(seed)
    rewards = rng.normal(size=steps).round(2)
    terminated = rng.random(steps) < 0.15
    truncated = ~terminated & (rng.random(steps) < 0.15)
    buffer = ReplayBuffer(capacity, (1,), (1,), gamma=0.9, n_step=n)
    _fill(buffer, rewards, terminated, truncated)
    stored = min(steps, capacity)
    for t in range(steps - stored, steps):  # the steps still in the buffer
        total, discount, last = _reference_n_step(rewards, terminated | truncated, terminated, t, steps - 1, n, 0.9)
        _, returns, next_obs, discounts = _sample_rows(buffer, [t % capacity])
        assert returns[0] == pytest.approx(total, abs=1e-5)
        assert discounts[0] == pytest.approx(discount, abs=1e-6)
        assert next_obs[0] == last + 0.5


def test_sample_is_seeded_and_state_round_trips():
    def filled(seed):
        buffer = ReplayBuffer(8, (2,), (), action_dtype=np.int64, gamma=GAMMA, seed=seed)
        for t in range(5):
            buffer.add(np.full((1, 2), t), np.array([t % 2]), np.array([t]), np.full((1, 2), t + 1), [False], [False])
        return buffer

    a, b = filled(7), filled(7)
    assert all(np.array_equal(x.numpy(), y.numpy()) for x, y in zip(a.sample(3), b.sample(3)))
    meta, arrays = a.state()
    c = ReplayBuffer(8, (2,), (), action_dtype=np.int64, gamma=GAMMA, seed=0)
    c.load_state(meta, arrays)
    assert len(c) == 5 and c.pos == 5
    assert all(np.array_equal(x.numpy(), y.numpy()) for x, y in zip(a.sample(4), c.sample(4)))


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_step must be an integer >= 1"):
        ReplayBuffer(8, (1,), (1,), n_step=0)
    with pytest.raises(ValueError, match="capacity must be >= n_envs"):
        ReplayBuffer(1, (1,), (1,), n_envs=2)
    with pytest.raises(ValueError, match="empty replay buffer"):
        ReplayBuffer(4, (1,), (1,)).sample(2)
