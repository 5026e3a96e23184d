"""Online RBM learning: constant memory, what each method replays, reservoir sampling, seeded determinism,
stream orders and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from evosparse.rbm import RBM, ContrastiveDivergence, make_pattern
from evosparse.rbm.online import OnlineConfig, OnlineLearner, stream_order

pytestmark = pytest.mark.usefixtures("one_thread")

N_VISIBLE, N_HIDDEN = 16, 8


def stream(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Binary vectors of two classes: class 0 lights the first half of the units, class 1 the second."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    prototypes = np.repeat(np.eye(2), N_VISIBLE // 2, axis=1)
    noise = rng.random((n, N_VISIBLE)) < 0.05
    return np.abs(prototypes[labels] - noise).astype(np.float32), labels


def learner(method: str, *, sparse: bool = False, seed: int = 0, **settings) -> OnlineLearner:
    pattern = make_pattern("fixprob", N_VISIBLE, N_HIDDEN, epsilon=2, rng=seed) if sparse else None
    rbm = RBM(N_VISIBLE, N_HIDDEN, pattern=pattern, seed=seed)
    cd = ContrastiveDivergence(lr=0.05, momentum=0.5, seed=seed + 1)
    return OnlineLearner(rbm, cd, OnlineConfig(method=method, n_new=5, n_replay=4, **settings), seed=seed + 2)


@pytest.mark.parametrize("method", ["ocd", "er", "ocd_gr"])
@pytest.mark.parametrize("sparse", [False, True])
def test_memory_is_constant_over_the_stream(method, sparse):
    online = learner(method, sparse=sparse)
    x, _ = stream()
    online.partial_fit(x[:5])
    after_one = online.memory_bytes()
    online.fit_stream(x[5:])
    assert online.memory_bytes() == after_one
    assert online.n_seen == 60 and online.n_steps == 12 and len(online.step_seconds) == 12
    # the replay state: ER's buffer or OCD_GR's chains, each n_replay vectors of float32; plain CD none
    assert after_one["replay"] == {"ocd": 0, "er": 4 * N_VISIBLE * 4, "ocd_gr": 4 * N_VISIBLE * 4}[method]
    assert (
        after_one["model"]
        == online.rbm.weights.nbytes + (online.rbm.pattern.index_bytes() if sparse else 0) + (N_VISIBLE + N_HIDDEN) * 4
    )


@pytest.mark.parametrize(("method", "sizes"), [("ocd", [5, 5, 5]), ("er", [5, 9, 9]), ("ocd_gr", [5, 9, 9])])
def test_each_method_replays_what_it_should(method, sizes):
    online = learner(method)
    seen = []
    step = online.learner.step
    online.learner.step = lambda rbm, batch: (seen.append(batch.copy()), step(rbm, batch))[1]
    x, _ = stream()
    online.fit_stream(x[:15])
    assert [len(batch) for batch in seen] == sizes
    np.testing.assert_array_equal(seen[1][:5], x[5:10])  # the new observations come first
    if method == "er":  # replayed rows are past observations
        past = {row.tobytes() for row in x[:10]}
        assert all(row.tobytes() in past for row in seen[2][5:])
        assert online.chains is None
    if method == "ocd_gr":  # replayed rows are the chains' states, and no observation is stored
        np.testing.assert_array_equal(seen[2][5:], online.chains)
        assert online.buffer is None and set(np.unique(online.chains)) <= {0.0, 1.0}


def test_reservoir_keeps_a_uniform_sample_of_the_stream():
    # After 20 observations with room for 5, each observation is in the buffer with probability 1/4.
    x = np.arange(20, dtype=np.float32)[:, None] * np.ones((1, N_VISIBLE), dtype=np.float32)
    counts = np.zeros(20)
    online = learner("er", buffer_size=5)
    for trial in range(1500):
        online.rng = np.random.default_rng(trial)
        online.n_seen = online.n_stored = 0
        for start in range(0, 20, 5):
            online._remember(x[start : start + 5])
            online.n_seen += 5
        counts[online.buffer[:, 0].astype(int)] += 1
        assert len(set(online.buffer[:, 0])) == 5
    frequency = counts / 1500
    # binomial sd of a frequency near 0.25 over 1500 trials: 0.011; 5 sd is a generous, still tight, bound
    assert np.all(np.abs(frequency - 0.25) < 0.056), frequency


@pytest.mark.parametrize("method", ["er", "ocd_gr"])
def test_same_seeds_give_identical_runs(method):
    x, _ = stream()
    runs = [learner(method, sparse=True, seed=3).fit_stream(x) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].rbm.weights, runs[1].rbm.weights)
    np.testing.assert_array_equal(runs[0].rbm.hidden_bias, runs[1].rbm.hidden_bias)
    state = "buffer" if method == "er" else "chains"
    np.testing.assert_array_equal(getattr(runs[0], state), getattr(runs[1], state))
    other = learner(method, sparse=True, seed=4).fit_stream(x)
    assert not np.array_equal(other.rbm.weights, runs[0].rbm.weights)


def test_stream_orders():
    labels = np.array([2, 0, 1, 2, 0, 1, 1])
    rng = np.random.default_rng(0)
    sorted_order = stream_order(labels, "sorted", rng)
    assert sorted(sorted_order.tolist()) == list(range(7))
    assert np.all(np.diff(labels[sorted_order]) >= 0)
    random_order = stream_order(labels, "random", rng)
    assert sorted(random_order.tolist()) == list(range(7))


def test_callback_sees_the_stream_progress():
    x, _ = stream()
    steps = []
    learner("ocd_gr").fit_stream(x[:35], callback=lambda online: steps.append(online.n_steps), every=3)
    assert steps == [3, 6, 7]


def test_bad_input_errors():
    with pytest.raises(ValueError, match="method must be one of ocd, er, ocd_gr; got 'gr'"):
        OnlineConfig(method="gr")
    with pytest.raises(ValueError, match="n_replay must be an integer >= 1, got 0"):
        OnlineConfig(n_replay=0)
    with pytest.raises(ValueError, match="order must be one of random, sorted; got 'reverse'"):
        stream_order(np.zeros(3), "reverse", np.random.default_rng(0))
    online = learner("er")
    with pytest.raises(ValueError, match=r"x_new must have shape \(batch >= 1, 16\), got \(2, 15\)"):
        online.partial_fit(np.zeros((2, 15)))
    with pytest.raises(ValueError, match="x_new holds NaN or infinite values"):
        online.partial_fit(np.full((2, 16), np.nan))
    with pytest.raises(TypeError, match="config must be an OnlineConfig"):
        OnlineLearner(online.rbm, online.learner, {"method": "er"}, seed=0)
