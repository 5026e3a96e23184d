"""Conditional RBMs for time series: the CRBM and the factored conditional RBM (FCRBM), dense or sparse (SET).

Both model the next values ``v`` (Gaussian visible units, unit variance on standardised data) given the
past ``u`` (history) and the context ``y`` (e.g. one-hot hour of day and weekday), with binary hidden units
``h``. The conditioning enters only through *dynamic biases*, so given ``(u, y)`` each model is an ordinary
Gaussian-Bernoulli RBM and contrastive divergence trains it.

**CRBM** (Taylor, Hinton and Roweis, NIPS 2007), with ``c = [u, y]``::

    E(v, h | c) = sum_i (v_i - a^_i)^2 / 2 - sum_j b^_j h_j - sum_ij v_i W_ji h_j
    a^ = a + A c          b^ = b + B c

**FCRBM** (Taylor and Hinton, ICML 2009): the context gates three-way interactions factored through ``F``
factors, and also gates the autoregressive biases::

    E = sum_i (v_i - a^_i)^2 / 2 - sum_j b^_j h_j - sum_f (W^v v)_f (W^h h)_f (W^y y)_f
    a^ = a + A^v^T [(A^u u) * (A^y y)]      b^ = b + B^h^T [(B^u u) * (B^y y)]

Conditionals (both models; ``sigma`` the logistic function)::

    p(h_j = 1 | v, u, y) = sigma(b^_j + d(-E)/dh_j)     p(v | h, u, y) = N(a^ + d(-E)/dv, I)

CD-k (:meth:`ConditionalRBM.cd_gradients`): the gradient of a weight is ``<d(-E)/dtheta>`` under the data
minus the same after ``k`` Gibbs steps. ``a^`` enters ``-E`` as ``(v - a^)``-terms whose ``a^^2`` part is
the same in both phases (``u``, ``y`` are clamped), so every dynamic-bias gradient uses ``v_data - v_model``.
Each weight matrix is a :class:`~evosparse.rbm.connections.Connections`: every product above and every CD
statistic is one sparse kernel call when the model is sparse, and SET rewires each matrix after every epoch.

Forecasting (:meth:`ConditionalRBM.predict`): clamp ``u, y``, start ``v`` at its dynamic bias ``a^`` and run
mean-field Gibbs iterations (hidden probabilities, visible means), as Mocanu et al. do for energy prediction.

Paper: Mocanu, Nguyen, Gibescu and Kling, "Deep learning for estimating building energy consumption",
Sustainable Energy, Grids and Networks 6 (2016) 91-99 (CRBM and FCRBM for building load forecasting).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evosparse._config import Config, at_least, between, non_negative, param, positive
from evosparse.rbm.connections import Connections

MODELS = ("crbm", "fcrbm")
TOPOLOGIES = ("dense", "fixprob", "set")  # fixprob: static Erdos-Renyi sparse; set: evolved after every epoch
__all__ = [
    "CRBM",
    "FCRBM",
    "MODELS",
    "TOPOLOGIES",
    "ConditionalRBM",
    "ConditionalRBMConfig",
    "build_conditional_rbm",
    "fit_epoch",
]


@dataclass(frozen=True)
class ConditionalRBMConfig(Config):
    """Settings of a CRBM / FCRBM and of its CD training."""

    n_hidden: int = param(64, "hidden units", rule=at_least(1))
    n_factors: int = param(32, "FCRBM factors per three-way interaction (ignored by the CRBM)", rule=at_least(1))
    epsilon: float = param(4.0, "Erdos-Renyi sparsity of each sparse weight matrix", rule=positive)
    zeta: float = param(
        0.3, "SET: fraction of each matrix rewired after every epoch", rule=between(0, 1, high_open=True)
    )
    cd_steps: int = param(1, "Gibbs steps of contrastive divergence (CD-k)", rule=at_least(1))
    lr: float = param(1e-3, "learning rate (Taylor et al.: 1e-3)", rule=positive)
    momentum: float = param(0.9, "momentum", rule=between(0, 1, high_open=True))
    weight_decay: float = param(2e-4, "L2 weight decay on the weights (not the biases)", rule=non_negative)
    batch_size: int = param(32, "mini-batch size", rule=at_least(1))
    epochs: int = param(60, "passes over the training windows", rule=at_least(1))
    mean_field_steps: int = param(30, "mean-field Gibbs iterations of a forecast", rule=at_least(1))
    init_scale: float | None = param(
        None, "std of the initial weights (None: 0.01 for the CRBM as Taylor et al., 0.1 for the FCRBM)", rule=positive
    )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic


class ConditionalRBM:
    """What the CRBM and the FCRBM share: biases, CD-k, the update, SET and forecasting.

    A subclass defines its weight matrices (``self.weights``: name -> Connections) and four functions of
    a batch: ``_dynamic_biases(u, y)`` -> (a^, b^, cache), ``_hidden_input(v, y, cache)``,
    ``_visible_input(h, y, cache)`` and ``_weight_gradients(phases, u, y, cache)``.
    """

    def __init__(self, n_visible: int, n_history: int, n_context: int, n_hidden: int, *, dtype: type) -> None:
        for name, value in (("n_visible", n_visible), ("n_history", n_history), ("n_hidden", n_hidden)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(n_context, bool) or not isinstance(n_context, int | np.integer) or n_context < 0:
            raise ValueError(f"n_context must be an integer >= 0, got {n_context!r}")
        self.n_visible, self.n_history, self.n_context, self.n_hidden = n_visible, n_history, n_context, n_hidden
        self.dtype = np.dtype(dtype)
        self.visible_bias = np.zeros(n_visible, self.dtype)
        self.hidden_bias = np.zeros(n_hidden, self.dtype)
        self.weights: dict[str, Connections] = {}
        self._bias_velocity = {
            "visible_bias": np.zeros(n_visible, self.dtype),
            "hidden_bias": np.zeros(n_hidden, self.dtype),
        }

    # ---- inspection --------------------------------------------------------------------------------------
    def n_parameters(self) -> int:
        """Stored weights (nnz of the sparse matrices) plus biases."""
        return sum(w.n_weights for w in self.weights.values()) + self.n_visible + self.n_hidden

    def memory_bytes(self) -> int:
        """Bytes of weights, indices and biases (the model as stored; momentum excluded)."""
        return sum(w.memory_bytes() for w in self.weights.values()) + self.visible_bias.nbytes + self.hidden_bias.nbytes

    # ---- checking inputs ---------------------------------------------------------------------------------
    def _check(self, name: str, x: np.ndarray, width: int, batch: int | None = None) -> np.ndarray:
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != 2 or x.shape[1] != width or (batch is not None and x.shape[0] != batch):
            rows = "batch" if batch is None else str(batch)
            raise ValueError(f"{name} must have shape ({rows}, {width}), got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name} holds non-finite values (NaN or inf)")
        return x

    def _inputs(self, history: np.ndarray, context: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u = self._check("history", history, self.n_history)
        y = self._check("context", context, self.n_context, u.shape[0])
        return u, y

    # ---- conditionals ------------------------------------------------------------------------------------
    def hidden_probabilities(self, v: np.ndarray, history: np.ndarray, context: np.ndarray) -> np.ndarray:
        """p(h = 1 | v, u, y), shape (batch, n_hidden)."""
        u, y = self._inputs(history, context)
        v = self._check("v", v, self.n_visible, u.shape[0])
        _, b_hat, cache = self._dynamic_biases(u, y)
        return _sigmoid(b_hat + self._hidden_input(v, y, cache))

    def visible_mean(self, h: np.ndarray, history: np.ndarray, context: np.ndarray) -> np.ndarray:
        """E[v | h, u, y] (the Gaussian's mean), shape (batch, n_visible)."""
        u, y = self._inputs(history, context)
        h = self._check("h", h, self.n_hidden, u.shape[0])
        a_hat, _, cache = self._dynamic_biases(u, y)
        return a_hat + self._visible_input(h, y, cache)

    # ---- contrastive divergence --------------------------------------------------------------------------
    def cd_gradients(
        self, v: np.ndarray, history: np.ndarray, context: np.ndarray, *, k: int, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """CD-k estimate of the log-likelihood gradient, averaged over the batch (name -> array).

        Negative phase as in Taylor's CRBM code: hidden states sampled, visible units set to their mean
        (no Gaussian noise); the statistics use hidden probabilities.
        """
        u, y = self._inputs(history, context)
        v_data = self._check("v", v, self.n_visible, u.shape[0])
        a_hat, b_hat, cache = self._dynamic_biases(u, y)
        h_data = _sigmoid(b_hat + self._hidden_input(v_data, y, cache))
        h_prob = h_data
        for _ in range(k):
            h_sample = (rng.random(h_prob.shape) < h_prob).astype(self.dtype)
            v_model = a_hat + self._visible_input(h_sample, y, cache)
            h_prob = _sigmoid(b_hat + self._hidden_input(v_model, y, cache))
        return self.phase_gradients(v_data, h_data, v_model, h_prob, u, y, cache=cache)

    def phase_gradients(
        self, v_data, h_data, v_model, h_model, history, context, *, cache=None
    ) -> dict[str, np.ndarray]:
        """``<d(-E)/dtheta>_data - <d(-E)/dtheta>_model`` for given data and model states, batch-averaged."""
        u, y = self._inputs(history, context)
        if cache is None:
            cache = self._dynamic_biases(u, y)[2]
        batch = u.shape[0]
        dv = v_data - v_model
        dh = h_data - h_model
        gradients = self._weight_gradients((v_data, h_data), (v_model, h_model), dv, dh, u, y, cache)
        gradients = {name: g / batch for name, g in gradients.items()}
        gradients["visible_bias"] = dv.mean(axis=0)
        gradients["hidden_bias"] = dh.mean(axis=0)
        return gradients

    def update(self, gradients: dict[str, np.ndarray], *, lr: float, momentum: float, weight_decay: float) -> None:
        """One momentum step of gradient ascent; weight decay on the weights only."""
        for name, connections in self.weights.items():
            connections.step(gradients[name], lr=lr, momentum=momentum, weight_decay=weight_decay)
        for name, velocity in self._bias_velocity.items():
            velocity *= momentum
            velocity += lr * gradients[name]
            getattr(self, name)[...] += velocity

    def evolve(self, zeta: float, rng: np.random.Generator) -> int:
        """SET on every sparse weight matrix (dense ones are left alone); returns connections rewired."""
        return sum(connections.evolve(zeta, rng) for connections in self.weights.values())

    # ---- forecasting -------------------------------------------------------------------------------------
    def predict(self, history: np.ndarray, context: np.ndarray, *, steps: int = 30) -> np.ndarray:
        """Mean-field forecast of v given (u, y): start at a^, alternate hidden probabilities and visible means."""
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        u, y = self._inputs(history, context)
        a_hat, b_hat, cache = self._dynamic_biases(u, y)
        v = a_hat
        for _ in range(steps):
            h = _sigmoid(b_hat + self._hidden_input(v, y, cache))
            v = a_hat + self._visible_input(h, y, cache)
        return v

    # ---- what a model defines ----------------------------------------------------------------------------
    def _dynamic_biases(self, u, y):  # pragma: no cover - abstract
        raise NotImplementedError

    def _hidden_input(self, v, y, cache):  # pragma: no cover - abstract
        raise NotImplementedError

    def _visible_input(self, h, y, cache):  # pragma: no cover - abstract
        raise NotImplementedError

    def _weight_gradients(self, data, model, dv, dh, u, y, cache):  # pragma: no cover - abstract
        raise NotImplementedError


class CRBM(ConditionalRBM):
    """Conditional RBM: ``W`` (hidden x visible), autoregressive ``A`` (visible x condition) and ``B``
    (hidden x condition), the condition being ``[history, context]``.

    Args:
        n_visible, n_history, n_context, n_hidden: layer sizes.
        epsilon: None (dense) or the Erdos-Renyi parameter of every weight matrix.
        init_scale: std of the initial weights.
        rng: random source (topology and weights).
        dtype: float32 or float64.
    """

    def __init__(
        self, n_visible, n_history, n_context, n_hidden, *, epsilon=None, init_scale=0.01, rng, dtype=np.float32
    ):
        super().__init__(n_visible, n_history, n_context, n_hidden, dtype=dtype)
        n_condition = n_history + n_context
        make = lambda rows, cols: Connections(rows, cols, epsilon=epsilon, init_scale=init_scale, rng=rng, dtype=dtype)  # noqa: E731
        self.weights = {
            "W": make(n_hidden, n_visible),
            "A": make(n_visible, n_condition),
            "B": make(n_hidden, n_condition),
        }

    def _dynamic_biases(self, u, y):
        c = np.concatenate([u, y], axis=1)
        a_hat = self.visible_bias + self.weights["A"].forward(c)
        b_hat = self.hidden_bias + self.weights["B"].forward(c)
        return a_hat, b_hat, c

    def _hidden_input(self, v, y, cache):
        return self.weights["W"].forward(v)

    def _visible_input(self, h, y, cache):
        return self.weights["W"].backward(h)

    def _weight_gradients(self, data, model, dv, dh, u, y, c):
        W = self.weights["W"]
        return {
            "W": W.statistics(data[1], data[0]) - W.statistics(model[1], model[0]),
            "A": self.weights["A"].statistics(dv, c),
            "B": self.weights["B"].statistics(dh, c),
        }


class FCRBM(ConditionalRBM):
    """Factored conditional RBM. Factor matrices (rows = factors): ``Wv``, ``Wh``, ``Wy`` for the gated
    visible-hidden interaction; ``Av``, ``Au``, ``Ay`` for the gated autoregressive visible bias; ``Bh``,
    ``Bu``, ``By`` for the gated hidden bias. A model with no context (``n_context = 0``) is not an FCRBM:
    the gates need a context.

    Args:
        n_visible, n_history, n_context, n_hidden: layer sizes.
        n_factors: factors of each of the three factored interactions.
        epsilon: None (dense) or the Erdos-Renyi parameter of every factor matrix.
        init_scale: std of the initial weights.
        rng: random source (topology and weights).
        dtype: float32 or float64.
    """

    def __init__(
        self,
        n_visible,
        n_history,
        n_context,
        n_hidden,
        *,
        n_factors,
        epsilon=None,
        init_scale=0.01,
        rng,
        dtype=np.float32,
    ):
        super().__init__(n_visible, n_history, n_context, n_hidden, dtype=dtype)
        if n_context < 1:
            raise ValueError(
                f"n_context must be >= 1 for an FCRBM (the context gates its interactions), got {n_context}"
            )
        if isinstance(n_factors, bool) or not isinstance(n_factors, int | np.integer) or n_factors < 1:
            raise ValueError(f"n_factors must be a positive integer, got {n_factors!r}")
        self.n_factors = int(n_factors)
        make = lambda cols: Connections(n_factors, cols, epsilon=epsilon, init_scale=init_scale, rng=rng, dtype=dtype)  # noqa: E731
        sizes = {"v": n_visible, "h": n_hidden, "u": n_history, "y": n_context}
        self.weights = {name: make(sizes[name[1]]) for name in ("Wv", "Wh", "Wy", "Av", "Au", "Ay", "Bh", "Bu", "By")}

    def _dynamic_biases(self, u, y):
        w = self.weights
        gate_v = w["Au"].forward(u) * w["Ay"].forward(y)  # (batch, F): (A^u u) * (A^y y)
        gate_h = w["Bu"].forward(u) * w["By"].forward(y)
        a_hat = self.visible_bias + w["Av"].backward(gate_v)
        b_hat = self.hidden_bias + w["Bh"].backward(gate_h)
        return a_hat, b_hat, {"qy": w["Wy"].forward(y), "gate_v": gate_v, "gate_h": gate_h}

    def _hidden_input(self, v, y, cache):
        return self.weights["Wh"].backward(self.weights["Wv"].forward(v) * cache["qy"])

    def _visible_input(self, h, y, cache):
        return self.weights["Wv"].backward(self.weights["Wh"].forward(h) * cache["qy"])

    def _weight_gradients(self, data, model, dv, dh, u, y, cache):
        w, qy = self.weights, cache["qy"]
        grads = {"Wv": 0.0, "Wh": 0.0, "Wy": 0.0}
        for sign, (v, h) in ((1.0, data), (-1.0, model)):
            qv, qh = w["Wv"].forward(v), w["Wh"].forward(h)
            # d(-E)/dWv[f, i] = v_i (W^h h)_f (W^y y)_f, and likewise for Wh and Wy
            grads["Wv"] = grads["Wv"] + sign * w["Wv"].statistics(qh * qy, v)
            grads["Wh"] = grads["Wh"] + sign * w["Wh"].statistics(qv * qy, h)
            grads["Wy"] = grads["Wy"] + sign * w["Wy"].statistics(qv * qh, y)
        pu_v, py_v = w["Au"].forward(u), w["Ay"].forward(y)
        back_v = w["Av"].forward(dv)  # (A^v dv)_f, shared by Au and Ay
        pu_h, py_h = w["Bu"].forward(u), w["By"].forward(y)
        back_h = w["Bh"].forward(dh)
        grads["Av"] = w["Av"].statistics(cache["gate_v"], dv)
        grads["Au"] = w["Au"].statistics(back_v * py_v, u)
        grads["Ay"] = w["Ay"].statistics(back_v * pu_v, y)
        grads["Bh"] = w["Bh"].statistics(cache["gate_h"], dh)
        grads["Bu"] = w["Bu"].statistics(back_h * py_h, u)
        grads["By"] = w["By"].statistics(back_h * pu_h, y)
        return grads


def build_conditional_rbm(
    model: str,
    topology: str,
    config: ConditionalRBMConfig,
    n_visible: int,
    n_history: int,
    n_context: int,
    *,
    seed: int | np.random.Generator,
    dtype: type = np.float32,
) -> ConditionalRBM:
    """A ``model`` ("crbm" or "fcrbm") with ``topology`` ("dense", "fixprob", "set") sized by ``config``.

    The topology and the initial weights are drawn from ``seed``; "fixprob" and "set" build the same
    Erdos-Renyi matrices (only training differs: SET rewires them after every epoch).
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if topology not in TOPOLOGIES:
        raise ValueError(f"topology must be one of {TOPOLOGIES}, got {topology!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    epsilon = None if topology == "dense" else config.epsilon
    if model == "crbm":
        scale = 0.01 if config.init_scale is None else config.init_scale
        return CRBM(
            n_visible, n_history, n_context, config.n_hidden, epsilon=epsilon, init_scale=scale, rng=rng, dtype=dtype
        )
    # Three-way products of 0.01-scale weights start near 1e-6 and barely move under CD: the FCRBM starts at 0.1.
    scale = 0.1 if config.init_scale is None else config.init_scale
    return FCRBM(
        n_visible,
        n_history,
        n_context,
        config.n_hidden,
        n_factors=config.n_factors,
        epsilon=epsilon,
        init_scale=scale,
        rng=rng,
        dtype=dtype,
    )


def fit_epoch(
    model: ConditionalRBM,
    v: np.ndarray,
    history: np.ndarray,
    context: np.ndarray,
    config: ConditionalRBMConfig,
    rng: np.random.Generator,
) -> None:
    """One shuffled pass of mini-batch CD-k updates (``config``: batch size, k, lr, momentum, weight decay)."""
    n = v.shape[0]
    if history.shape[0] != n or context.shape[0] != n:
        raise ValueError(f"v, history and context need the same rows, got {n}, {history.shape[0]}, {context.shape[0]}")
    order = rng.permutation(n)
    for start in range(0, n, config.batch_size):
        batch = order[start : start + config.batch_size]
        gradients = model.cd_gradients(v[batch], history[batch], context[batch], k=config.cd_steps, rng=rng)
        model.update(gradients, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
