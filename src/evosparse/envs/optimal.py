"""Perfect-foresight optima: the cheapest any controller can do on an episode, as LP / MILP (HiGHS).

Each model is written on the episode the environment drew at ``reset`` and uses the device equations of
:mod:`evosparse.envs.devices`. Every trajectory the environment can produce is a feasible point of the model
with the same cost, so the optimum bounds every controller from below; the model may be looser than the
environment (e.g. it may charge and discharge in the same hour), which only lowers the bound. The returned
plan is also an action schedule, replayed through the environment by :class:`evosparse.envs.controllers.
OptimalController` to report the optimum's metrics the same way as any controller's.

1. build the model (variables per step, dynamics as equality rows, the cost);
2. solve with HiGHS (``scipy.optimize.milp``; binaries only for the microgrid generator);
3. convert the optimal powers back to action fractions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evosparse.envs.lp import ProgramBuilder


@dataclass
class Plan:
    actions: np.ndarray  # (n_steps, action_dim), or (n_steps, n_agents) for a community
    objective: float  # cost of the plan in the model (currency; penalties included)
    bound: float  # proven lower bound on any controller's cost on this episode
    status: str


def _battery(
    lp: ProgramBuilder,
    n: int,
    *,
    limit,
    capacity,
    initial,
    charge_efficiency,
    discharge_efficiency,
    wear: float,
    hours: float = 1.0,
    shape: tuple[int, ...] = (),
    price=0.0,
):
    """Charge / discharge (kW) and state of charge (kWh) for ``shape`` batteries over n steps, flattened
    step-major: variable ``[t * size + i]``; soc_t = soc_{t-1} + eta_c c_t h - d_t h / eta_d. Charging costs
    ``(wear + price) * h`` per kW and discharging ``(wear - price) * h`` (``price`` per step, for a market)."""
    size = int(np.prod(shape)) if shape else 1
    limit = np.broadcast_to(np.asarray(limit, dtype=np.float64), (n, size)).reshape(-1)
    price = np.broadcast_to(np.asarray(price, dtype=np.float64).reshape(-1, 1), (n, size)).reshape(-1)
    charge = lp.variables("charge", n * size, upper=limit, cost=(wear + price) * hours)
    discharge = lp.variables("discharge", n * size, upper=limit, cost=(wear - price) * hours)
    soc = lp.variables("soc", n * size, upper=np.broadcast_to(capacity, (n, size)).reshape(-1))
    rhs = np.zeros(n * size)
    rhs[:size] = np.broadcast_to(initial, (size,))
    lp.equal(
        [
            (soc, 1.0),
            (soc[:-size], -1.0, np.arange(size, n * size)),
            (charge, -charge_efficiency * hours),
            (discharge, hours / discharge_efficiency),
        ],
        rhs,
    )
    return charge, discharge


def config_battery(lp: ProgramBuilder, n: int, config, *, limit=None, **extra):
    """:func:`_battery` with the size, state of charge, efficiencies and wear of an environment's config
    (fields ``battery_kwh``, ``battery_kw``, ``initial_soc``, ``charge_efficiency``, ``discharge_efficiency``,
    ``degradation_cost``): the battery block of every optimum, a new environment's included."""
    return _battery(
        lp,
        n,
        limit=config.battery_kw if limit is None else limit,
        capacity=config.battery_kwh,
        initial=config.initial_soc * config.battery_kwh,
        charge_efficiency=config.charge_efficiency,
        discharge_efficiency=config.discharge_efficiency,
        wear=config.degradation_cost,
        **extra,
    )


def fraction(numerator, denominator):
    """``numerator / denominator`` as action fractions, 0 where a device has size 0."""
    denominator = np.asarray(denominator, dtype=np.float64)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator, dtype=np.float64), where=denominator > 0)


# ---- one building ------------------------------------------------------------------------------------
def building_optimum(env) -> Plan:
    """LP over the whole episode of a reset :class:`~evosparse.envs.building.BuildingEnergyEnv`."""
    episode, config = env.episode, env.config
    if episode is None:
        raise RuntimeError("reset the environment before computing its optimum")
    n, lp = episode.n, ProgramBuilder()
    columns = {}
    balance_terms = []
    if "battery" in env.action_names:
        charge, discharge = config_battery(lp, n, config, limit=episode.battery_limit[:, None])
        balance_terms += [(charge, -1.0), (discharge, 1.0)]
        columns["battery"] = (charge, discharge)
    if "hvac" in env.action_names:
        cool = lp.variables("cool", n, upper=config.hvac_kw)
        heat = lp.variables("heat", n, upper=config.hvac_kw)
        deviation = lp.variables("deviation", n, lower=-np.inf)
        above = lp.variables("above", n, cost=config.comfort_penalty)
        below = lp.variables("below", n, cost=config.comfort_penalty)
        loss = config.conductance / config.thermal_mass
        # x_t = (1 - loss) x_{t-1} + (gain_t - cop (cool_t - heat_t)) / C, with x_{-1} = 0
        lp.equal(
            [
                (deviation, 1.0),
                (deviation[:-1], -(1.0 - loss), np.arange(1, n)),
                (cool, config.cop / config.thermal_mass),
                (heat, -config.cop / config.thermal_mass),
            ],
            episode.gain / config.thermal_mass,
        )
        lp.rows([(deviation, 1.0), (above, -1.0)], low=-np.inf, high=config.comfort_band)
        lp.rows([(deviation, -1.0), (below, -1.0)], low=-np.inf, high=config.comfort_band)
        balance_terms += [(cool, -1.0), (heat, -1.0)]
        columns["hvac"] = (cool, heat)
    for name, pending, required, power, efficiency in (
        ("ev", episode.ev_session, episode.ev_required, config.ev_kw, config.ev_efficiency),
        ("appliance", episode.job, episode.job_required, config.appliance_kw, 1.0),
    ):
        if name not in env.action_names:
            continue
        served = lp.variables(name, n, upper=np.where(pending >= 0, power, 0.0))
        if len(required):
            unmet = lp.variables(f"{name}_unmet", len(required), cost=config.unmet_penalty)
            active = np.flatnonzero(pending >= 0)
            # every session k: efficiency * (energy delivered while pending) + unmet_k = required_k
            lp.equal([(served[active], efficiency, pending[active]), (unmet, 1.0)], required)
        balance_terms.append((served, -1.0))
        columns[name] = (served,)
    grid_import = lp.variables("import", n, cost=episode.price)
    grid_export = lp.variables("export", n, cost=-episode.export_price)
    lp.equal([(grid_import, 1.0), (grid_export, -1.0), *balance_terms], episode.load - episode.pv)
    solution = lp.solve()

    x = solution.values
    actions = []
    for name in env.action_names:
        if name == "battery":
            actions.append(fraction(x["charge"] - x["discharge"], episode.battery_limit))
        elif name == "hvac":
            actions.append(fraction(x["cool"] - x["heat"], np.full(n, config.hvac_kw)))
        else:
            actions.append(fraction(x[name], np.full(n, config.ev_kw if name == "ev" else config.appliance_kw)))
    actions = np.clip(np.stack(actions, axis=1), env._low, env._high)
    return Plan(actions=actions, objective=solution.objective, bound=solution.bound, status=solution.status)


# ---- energy community --------------------------------------------------------------------------------
def community_optimum(env) -> Plan:
    """LP for all batteries of a reset :class:`~evosparse.envs.community.EnergyCommunityEnv` over the whole episode.

    Peak charge: ``peak >= community net(t)`` for all t; feeder: ``overload(t) >= |net(t)| - capacity``.
    Without peer-to-peer each building meters alone; with it, the community's cost is that of its net load
    (internal trades at the mid price cancel between buyer and seller).
    """
    env = env.core if hasattr(env, "core") else env
    episode, config, n, size = env.episode, env.config, env.config.episode_hours, env.n_agents
    if episode is None:
        raise RuntimeError("reset the environment before computing its optimum")
    lp = ProgramBuilder()
    charge, discharge = config_battery(lp, n, config, shape=(size,))
    step_of = np.arange(n * size) // size  # row (step) of each step-major building variable
    base = (episode["load"] - episode["pv"]).reshape(-1)  # (n * size,) step-major
    base_total = (episode["load"] - episode["pv"]).sum(axis=1)
    if config.peer_to_peer:
        grid_import = lp.variables("import", n, cost=episode["price"])
        grid_export = lp.variables("export", n, cost=-episode["export_price"])
        lp.equal(
            [(grid_import, 1.0), (grid_export, -1.0), (charge, -1.0, step_of), (discharge, 1.0, step_of)], base_total
        )
    else:
        grid_import = lp.variables("import", n * size, cost=np.repeat(episode["price"], size))
        grid_export = lp.variables("export", n * size, cost=-np.repeat(episode["export_price"], size))
        lp.equal([(grid_import, 1.0), (grid_export, -1.0), (charge, -1.0), (discharge, 1.0)], base)
    peak = lp.variables("peak", 1, cost=config.peak_price)
    overload = lp.variables("overload", n, cost=config.overload_penalty)
    net_terms = [(charge, 1.0, step_of), (discharge, -1.0, step_of)]
    # peak - net(t) >= 0 ; overload(t) - net(t) >= -capacity ; overload(t) + net(t) >= -capacity
    lp.rows(
        [(np.zeros(n, dtype=np.int64) + peak[0], 1.0), *[(c, -v, r) for c, v, r in net_terms]],
        low=base_total,
        high=np.inf,
    )
    lp.rows([(overload, 1.0), *[(c, -v, r) for c, v, r in net_terms]], low=base_total - env.feeder_kw, high=np.inf)
    lp.rows([(overload, 1.0), *net_terms], low=-base_total - env.feeder_kw, high=np.inf)
    solution = lp.solve(time_limit=600.0)
    power = (solution.values["charge"] - solution.values["discharge"]).reshape(n, size)
    actions = np.clip(power / config.battery_kw, -1.0, 1.0) if config.battery_kw > 0 else np.zeros((n, size))
    return Plan(actions=actions, objective=solution.objective, bound=solution.bound, status=solution.status)


# ---- microgrid ---------------------------------------------------------------------------------------
def microgrid_optimum(env, *, time_limit: float = 120.0) -> Plan:
    """MILP of a reset :class:`~evosparse.envs.microgrid.MicrogridEnv`: a binary on/off per hour for the
    generator (minimum output, no-load and start-up costs), everything else continuous."""
    episode, config, n = env.episode, env.config, env.config.episode_hours
    if episode is None:
        raise RuntimeError("reset the environment before computing its optimum")
    lp = ProgramBuilder()
    charge, discharge = config_battery(lp, n, config)
    generator = lp.variables("generator", n, upper=config.generator_kw, cost=config.fuel_cost)
    on = lp.variables("on", n, upper=1.0, cost=config.no_load_cost, integer=True)
    start = lp.variables("start", n, upper=1.0, cost=config.startup_cost)
    tie = config.grid_kw * episode["grid_available"]
    grid_import = lp.variables("import", n, upper=tie, cost=episode["price"])
    grid_export = lp.variables("export", n, upper=tie, cost=-episode["export_price"])
    shed = lp.variables("shed", n, cost=config.shed_cost)
    spill = lp.variables("spill", n, cost=config.curtail_cost)
    lp.equal(
        [
            (grid_import, 1.0),
            (grid_export, -1.0),
            (discharge, 1.0),
            (charge, -1.0),
            (generator, 1.0),
            (shed, 1.0),
            (spill, -1.0),
        ],
        episode["load"] - episode["pv"],
    )
    # min_output * on <= generator <= max_output * on ; start_t >= on_t - on_{t-1} (off before the episode)
    lp.rows([(generator, 1.0), (on, -config.generator_min_kw)], low=0.0, high=np.inf)
    lp.rows([(generator, 1.0), (on, -config.generator_kw)], low=-np.inf, high=0.0)
    lp.rows([(start, 1.0), (on, -1.0), (on[:-1], 1.0, np.arange(1, n))], low=0.0, high=np.inf)
    solution = lp.solve(time_limit=time_limit)
    x = solution.values
    running = x["on"] > 0.5
    generator_action = np.where(running, np.maximum(x["generator"] / config.generator_kw, 1e-6), 0.0)
    battery_action = fraction(x["charge"] - x["discharge"], np.full(n, config.battery_kw))
    actions = np.clip(np.stack([battery_action, generator_action], axis=1), env._low, env._high)
    return Plan(actions=actions, objective=solution.objective, bound=solution.bound, status=solution.status)


# ---- intraday market ---------------------------------------------------------------------------------
def market_optimum(env) -> Plan:
    """LP of a reset :class:`~evosparse.envs.market.IntradayMarketEnv`: knowing every clearing price, the best
    bids are market orders for the cheapest arbitrage schedule; deviations never pay (the imbalance price is
    worse than the clearing price both ways), so the schedule is all the model needs."""
    episode, config, n = env.episode, env.config, env.n_steps
    if episode is None:
        raise RuntimeError("reset the environment before computing its optimum")
    lp = ProgramBuilder()
    config_battery(lp, n, config, hours=env.hours, price=episode["clearing_price"])
    solution = lp.solve()
    quantity = fraction(solution.values["charge"] - solution.values["discharge"], np.full(n, config.battery_kw))
    actions = np.stack([np.clip(quantity, -1.0, 1.0), np.sign(quantity)], axis=1)  # market orders
    return Plan(actions=actions, objective=solution.objective, bound=solution.bound, status=solution.status)
