"""Device models of the smart-grid environments as small pure functions (scalars or numpy arrays alike).

Conventions, shared by the environments and the linear programs in :mod:`evosparse.envs.optimal`:

* power is grid-side kW, one time step lasts ``hours`` h, energy is kWh;
* battery: ``soc' = soc + charge_efficiency * charge * hours - discharge * hours / discharge_efficiency``
  with ``0 <= soc' <= capacity``, ``0 <= charge <= max_power``, ``0 <= discharge <= max_power``;
* thermal zone (first-order RC model, written on the deviation ``x`` of indoor temperature from the set point):
  ``x' = (1 - loss) * x + (gain - cop * hvac_power * hours) / thermal_mass`` where ``gain`` is the heat entering
  the zone (kWh_th, from weather) and positive HVAC power cools; comfort violation is the distance of ``x'`` outside
  ``[-band, +band]`` (degree-hours);
* deferrable request (EV session, appliance job): delivered energy ``efficiency * power * hours`` per step,
  never more than what is still needed.

Each function returns the new state and the power actually drawn, so the environments stay short and the
invariants (bounds, energy balance) can be tested on the functions themselves.
"""

from __future__ import annotations

import numpy as np


def battery_step(
    soc,
    power,
    *,
    capacity,
    max_power,
    charge_efficiency: float,
    discharge_efficiency: float,
    hours: float,
):
    """Apply a requested grid-side battery power (kW, + charge, - discharge) within power and energy limits.

    Returns ``(new_soc, power)``: the power actually exchanged with the grid is the request clipped to
    ``[-max_power, max_power]`` and to what the state of charge allows, so ``0 <= new_soc <= capacity`` always.
    """
    power = np.clip(power, -max_power, max_power)
    charge_room = (capacity - soc) / (charge_efficiency * hours)  # kW that fills the battery exactly
    discharge_room = soc * discharge_efficiency / hours  # kW that empties it exactly
    power = np.clip(power, -discharge_room, charge_room)
    stored = np.where(power > 0, power * charge_efficiency, power / discharge_efficiency) * hours
    new_soc = np.clip(soc + stored, 0.0, capacity)  # clip only rounding: the power was already feasible
    return new_soc, power


def battery_step_scalar(
    soc: float,
    power: float,
    capacity: float,
    max_power: float,
    charge_efficiency: float,
    discharge_efficiency: float,
    hours: float,
) -> tuple[float, float]:
    """:func:`battery_step` for Python floats (several times faster than numpy on one building)."""
    power = min(max(power, -max_power), max_power)
    power = min(max(power, -soc * discharge_efficiency / hours), (capacity - soc) / (charge_efficiency * hours))
    stored = (power * charge_efficiency if power > 0 else power / discharge_efficiency) * hours
    return min(max(soc + stored, 0.0), capacity), power


def thermal_step(deviation, hvac_power, gain, *, cop: float, thermal_mass: float, loss: float, hours: float):
    """Indoor temperature deviation from the set point after one step (positive: warmer than the set point)."""
    return (1.0 - loss) * deviation + (gain - cop * hvac_power * hours) / thermal_mass


def thermostat_power(deviation, gain, target, *, cop: float, thermal_mass: float, loss: float):
    """Heat-pump electric power (kW, positive: cooling) that brings the deviation to ``target`` in one hour:
    :func:`thermal_step` solved for the power (unclipped)."""
    return ((1 - loss) * deviation * thermal_mass + gain - target * thermal_mass) / cop


def comfort_violation(deviation, band: float):
    """Degrees outside the comfort band ``[-band, band]`` (0 inside), in degree-hours for a one-hour step."""
    return np.maximum(deviation - band, 0.0) + np.maximum(-band - deviation, 0.0)


def request_step(remaining, power, *, max_power, efficiency: float, hours: float, connected):
    """Serve a deferrable request (EV session or appliance job) with a requested power (kW).

    Returns ``(new_remaining, power)``: power is clipped to ``[0, max_power]``, to zero when nothing is
    connected, and to the energy still needed, so a request is never over-served.
    """
    power = np.clip(power, 0.0, max_power)
    power = np.where(connected, np.minimum(power, remaining / (efficiency * hours)), 0.0)
    return np.maximum(remaining - efficiency * power * hours, 0.0), power


def thermal_gain(outdoor_temperature, irradiance, *, set_point: float, conductance: float, solar_aperture: float):
    """Heat entering the zone per hour (kWh_th) at the set point: conduction plus solar gains.

    ``conductance`` is UA in kW/K and ``solar_aperture`` the effective window area in m2 (irradiance in W/m2).
    Negative gain means the zone loses heat and needs heating (negative HVAC power).
    """
    return conductance * (outdoor_temperature - set_point) + solar_aperture * irradiance / 1000.0
