"""How good is an RBM: reconstruction error, pseudo-log-likelihood, and log-likelihood by AIS.

* :func:`reconstruction_error`: mean((v - E[v | h])^2), h sampled from p(h | v) -- what the SET-RBM
  reference reports (cheap, but not a likelihood).
* :func:`pseudo_log_likelihood`: sum_i log p(v_i | v_-i) for binary units, from free-energy differences
  (Besag 1975); each flipped unit costs O(its degree x batch), so all n_visible sites cost O(nnz x batch).
* :func:`exact_log_partition`: log Z by enumerating the smaller layer's 2^n states (tiny models: tests).
* :func:`ais_log_partition`: log Z by annealed importance sampling (Neal 2001; Salakhutdinov and Murray,
  ICML 2008) from a base RBM with no weights whose visible biases match the data's marginals:

  1. p_beta(v) ~ exp(-F_beta(v)), F_beta mixing the base (weight 1 - beta) and the RBM (beta), for
     0 = beta_0 < ... < beta_K = 1; exact samples of p_0 start ``n_runs`` chains,
  2. per beta_k: log w += log p*_k(v) - log p*_{k-1}(v), then one Gibbs step that leaves p_k invariant,
  3. log Z = log Z_0 + log mean(w); the interval is log(mean(w) +- n_std standard errors), the
     "+- 3 standard deviations" the paper reports.

* :func:`log_likelihood`: mean log p(v) = -mean F(v) - log Z, with the interval carried over from log Z.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from evosparse.rbm.model import RBM, as_rng, sigmoid, softplus

MAX_ENUMERATED_UNITS = 24  # 2^24 states: the largest layer exact_log_partition enumerates


def reconstruction_error(rbm: RBM, x: np.ndarray, *, rng: int | np.random.Generator | None = None,
                         batch_size: int = 1000) -> float:  # fmt: skip
    """mean((v - E[v | h])^2) over ``x`` (all units, all samples), h ~ p(h | v) sampled with ``rng``."""
    rng = as_rng(rng)
    total, count = 0.0, 0
    for start in range(0, np.shape(x)[0], batch_size):
        vt = rbm.to_feature_major(np.asarray(x)[start : start + batch_size], "x")
        ht = rbm.bernoulli_t(rbm.hidden_probabilities_t(vt), rng)
        total += float(((vt - rbm.visible_mean_t(ht)).astype(np.float64) ** 2).sum())
        count += vt.size
    if count == 0:
        raise ValueError("x must hold at least one sample")
    return total / count


def pseudo_log_likelihood(
    rbm: RBM, x: np.ndarray, *, sites: int | None = None, rng: int | np.random.Generator | None = None
) -> float:
    """Mean over samples of sum_i log p(v_i | v_-i) (binary data, Bernoulli RBM), in nats.

    ``sites=None`` sums over every visible unit (exact); ``sites=m`` estimates the sum from ``m`` units
    drawn per call (scaled by n_visible / m), as scikit-learn's ``score_samples`` does with one.
    """
    if rbm.visible != "bernoulli":
        raise ValueError("pseudo_log_likelihood needs binary visible units (visible='bernoulli'); "
                         "use log_likelihood for a Gaussian RBM")  # fmt: skip
    vt = rbm.to_feature_major(x, "x").astype(np.float64)
    if not np.all((vt == 0) | (vt == 1)):
        raise ValueError("x must be binary (0 / 1) for the pseudo-log-likelihood; binarise it first")
    chosen = np.arange(rbm.n_visible)
    if sites is not None:
        if isinstance(sites, bool) or not isinstance(sites, int) or not 1 <= sites <= rbm.n_visible:
            raise ValueError(f"sites must be an integer in [1, {rbm.n_visible}] or None, got {sites!r}")
        chosen = np.sort(as_rng(rng).choice(rbm.n_visible, size=sites, replace=False))
    pattern, weights = rbm.pattern, rbm.weights.astype(np.float64)
    pre = rbm.hidden_input(vt.astype(rbm.dtype)).astype(np.float64)  # (n_hidden, batch)
    bias = rbm.visible_bias.astype(np.float64)
    total = np.zeros(vt.shape[1])
    for i in chosen:
        # Flipping v_i changes c + W v by (1 - 2 v_i) W[:, i]: only the hidden units of column i move.
        k = pattern.csc_perm[pattern.csc_indptr[i] : pattern.csc_indptr[i + 1]]
        rows = pattern.csc_rows[pattern.csc_indptr[i] : pattern.csc_indptr[i + 1]]
        sign = 1.0 - 2.0 * vt[i]
        moved = pre[rows] + weights[k][:, None] * sign
        # F(flipped) - F(v) = -b_i sign - sum_j [softplus(moved_j) - softplus(pre_j)]
        delta = -bias[i] * sign - (softplus(moved) - softplus(pre[rows])).sum(axis=0)
        total += -np.logaddexp(0.0, -delta)  # log sigmoid(F(flipped) - F(v)) = log p(v_i | v_-i)
    return float(total.mean() * rbm.n_visible / chosen.shape[0])


def exact_log_partition(rbm: RBM) -> float:
    """log Z by summing over every state of the hidden layer (or of a binary visible layer if smaller)."""
    n_h, n_v = rbm.n_hidden, rbm.n_visible
    over_visible = rbm.visible == "bernoulli" and n_v < n_h
    units = n_v if over_visible else n_h
    if units > MAX_ENUMERATED_UNITS:
        raise ValueError(f"exact_log_partition enumerates 2^{units} states; at most 2^{MAX_ENUMERATED_UNITS} "
                         "are allowed (use ais_log_partition)")  # fmt: skip
    W = rbm.to_dense().astype(np.float64)
    b, c = rbm.visible_bias.astype(np.float64), rbm.hidden_bias.astype(np.float64)
    terms = []
    for start in range(0, 1 << units, 1 << 16):
        states = np.arange(start, min(start + (1 << 16), 1 << units))
        bits = ((states[:, None] >> np.arange(units)) & 1).astype(np.float64)
        if over_visible:  # sum_v exp(b.v) prod_j (1 + exp(c_j + W_j v))
            terms.append(bits @ b + softplus(bits @ W.T + c).sum(axis=1))
        elif rbm.visible == "bernoulli":  # sum_h exp(c.h) prod_i (1 + exp(b_i + (W^T h)_i))
            terms.append(bits @ c + softplus(bits @ W + b).sum(axis=1))
        else:  # Gaussian: the integral over v of exp(-||v - b||^2 / 2 + v.W^T h) is closed-form
            mean = bits @ W + b
            terms.append(bits @ c + 0.5 * (mean**2).sum(axis=1) - 0.5 * b @ b + 0.5 * n_v * math.log(2 * math.pi))
    return float(logsumexp(np.concatenate(terms)))


@dataclass(frozen=True)
class AISResult:
    """An AIS estimate of log Z and its interval (``low`` is -inf when mean(w) - n_std se <= 0)."""

    log_z: float
    low: float
    high: float
    n_runs: int
    n_betas: int
    log_z_base: float


def _base_visible_bias(rbm: RBM, data: np.ndarray | None) -> np.ndarray:
    """The base model's visible biases: the data's log-odds (Bernoulli, Salakhutdinov and Murray) or means."""
    if data is None:
        return np.zeros(rbm.n_visible)
    x = np.asarray(data, dtype=np.float64)
    if rbm.visible == "gaussian":
        return x.mean(axis=0)
    p = np.clip(x.mean(axis=0), 1e-3, 1 - 1e-3)  # smoothed: no infinite bias for a constant pixel
    return np.log(p) - np.log1p(-p)


def ais_log_partition(
    rbm: RBM,
    *,
    n_runs: int = 100,
    n_betas: int = 10000,
    data: np.ndarray | None = None,
    rng: int | np.random.Generator | None = None,
    n_std: float = 3.0,
) -> AISResult:
    """Estimate log Z of ``rbm`` by AIS (see the module doc); ``data`` sets the base model's visible biases.

    Betas follow the schedule of Salakhutdinov and Murray (2008): uniform in three stages, 10% of the steps
    up to 0.5, 40% up to 0.9, 50% up to 1 (the last stage, where p_beta changes fastest, gets most steps).
    """
    if isinstance(n_runs, bool) or not isinstance(n_runs, int) or n_runs < 2:
        raise ValueError(f"n_runs must be an integer >= 2, got {n_runs!r}")
    if isinstance(n_betas, bool) or not isinstance(n_betas, int) or n_betas < 10:
        raise ValueError(f"n_betas must be an integer >= 10, got {n_betas!r}")
    rng = as_rng(rng)
    first, second = n_betas // 10, n_betas * 4 // 10
    betas = np.concatenate([np.linspace(0, 0.5, first, endpoint=False), np.linspace(0.5, 0.9, second, endpoint=False),
                            np.linspace(0.9, 1.0, n_betas - first - second)])  # fmt: skip
    W = rbm.to_dense().astype(np.float64) if rbm.is_dense or rbm.nnz > 0.25 * rbm.n_hidden * rbm.n_visible else None
    b, c = rbm.visible_bias.astype(np.float64), rbm.hidden_bias.astype(np.float64)
    base = _base_visible_bias(rbm, data)
    gaussian = rbm.visible == "gaussian"

    def hidden_input(v):  # (runs, n_visible) -> c + W v, (runs, n_hidden), float64
        if W is not None:
            return v @ W.T + c
        return rbm.hidden_input(np.ascontiguousarray(v.T, dtype=rbm.dtype)).T.astype(np.float64)

    def visible_input(h):  # W^T h, (runs, n_visible)
        if W is not None:
            return h @ W
        return (rbm.visible_input(np.ascontiguousarray(h.T, dtype=rbm.dtype)).T - rbm.visible_bias).astype(np.float64)

    def log_p_star(v, pre, beta):  # the unnormalised marginal of v under p_beta (hidden units summed out)
        if gaussian:
            visible = -0.5 * (1 - beta) * ((v - base) ** 2).sum(axis=1) - 0.5 * beta * ((v - b) ** 2).sum(axis=1)
        else:
            visible = v @ ((1 - beta) * base + beta * b)
        # The base has n_hidden hidden units with no weights and zero biases: a constant n_h log 2 (the
        # beta-weighted version of it cancels in the ratios, so it is only added to log Z_0).
        return visible + softplus(beta * pre).sum(axis=1)

    # Exact samples of the base model (beta = 0): independent visible units.
    if gaussian:
        v = base + rng.standard_normal((n_runs, rbm.n_visible))
        log_z0 = rbm.n_hidden * math.log(2) + 0.5 * rbm.n_visible * math.log(2 * math.pi)
    else:
        v = (rng.random((n_runs, rbm.n_visible)) < sigmoid(base)).astype(np.float64)
        log_z0 = rbm.n_hidden * math.log(2) + float(softplus(base).sum())
    log_w = np.zeros(n_runs)
    pre = hidden_input(v)
    for previous, beta in zip(betas[:-1], betas[1:]):
        log_w += log_p_star(v, pre, beta) - log_p_star(v, pre, previous)
        # One Gibbs step leaving p_beta invariant: h ~ p_beta(h | v), then v ~ p_beta(v | h).
        h = (rng.random(pre.shape) < sigmoid(beta * pre)).astype(np.float64)
        mean = (1 - beta) * base + beta * (b + visible_input(h))
        v = mean + rng.standard_normal(mean.shape) if gaussian else (rng.random(mean.shape) < sigmoid(mean)) * 1.0
        pre = hidden_input(v)
    shift = log_w.max()
    w = np.exp(log_w - shift)
    mean, se = w.mean(), w.std(ddof=1) / math.sqrt(n_runs)
    log_z = log_z0 + shift + math.log(mean)
    low = log_z0 + shift + math.log(mean - n_std * se) if mean - n_std * se > 0 else -math.inf
    high = log_z0 + shift + math.log(mean + n_std * se)
    return AISResult(float(log_z), float(low), float(high), n_runs, n_betas, float(log_z0))


@dataclass(frozen=True)
class LikelihoodResult:
    """Mean log-likelihood of data (nats per sample) with the interval of its log Z estimate."""

    mean: float
    low: float
    high: float
    log_z: AISResult | float


def log_likelihood(rbm: RBM, x: np.ndarray, log_z: AISResult | float) -> LikelihoodResult:
    """mean log p(v) = -mean F(v) - log Z; an AIS interval on log Z gives the interval (reversed ends)."""
    minus_free_energy = float(-rbm.free_energy(x).mean())
    if isinstance(log_z, AISResult):
        return LikelihoodResult(minus_free_energy - log_z.log_z, minus_free_energy - log_z.high,
                                minus_free_energy - log_z.low, log_z)  # fmt: skip
    value = minus_free_energy - float(log_z)
    return LikelihoodResult(value, value, value, float(log_z))
