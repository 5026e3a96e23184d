"""Device functions: the numpy battery against its scalar twin and a slow obvious reference; requests."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from evosparse.envs import devices

EFFICIENCY = st.floats(0.5, 1.0)


def reference_battery(soc, power, capacity, max_power, eta_charge, eta_discharge, hours):
    """Slow and obvious: try the requested power, shrink it until the state of charge stays in bounds."""
    power = min(max(power, -max_power), max_power)
    if power > 0:
        power = min(power, (capacity - soc) / (eta_charge * hours))
        return soc + eta_charge * power * hours, power
    power = max(power, -soc * eta_discharge / hours)
    return soc + power * hours / eta_discharge, power


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.floats(0.1, 100),
    fill=st.floats(0, 1),
    request=st.floats(-1e3, 1e3),
    max_power=st.floats(0, 50),
    eta_charge=EFFICIENCY,
    eta_discharge=EFFICIENCY,
    hours=st.sampled_from([0.25, 1.0]),
)
def test_battery_step_matches_the_reference_and_stays_in_bounds(
    capacity, fill, request, max_power, eta_charge, eta_discharge, hours
):
    soc = fill * capacity
    expected_soc, expected_power = reference_battery(
        soc, request, capacity, max_power, eta_charge, eta_discharge, hours
    )
    scalar = devices.battery_step_scalar(soc, request, capacity, max_power, eta_charge, eta_discharge, hours)
    vector = devices.battery_step(
        np.array([soc]), np.array([request]), capacity=capacity, max_power=max_power,
        charge_efficiency=eta_charge, discharge_efficiency=eta_discharge, hours=hours,
    )  # fmt: skip
    for new_soc, power in (scalar, (vector[0][0], vector[1][0])):
        assert 0.0 <= new_soc <= capacity
        assert abs(power) <= max_power + 1e-12
        np.testing.assert_allclose([new_soc, power], [expected_soc, expected_power], rtol=1e-9, atol=1e-9)


@settings(max_examples=100, deadline=None)
@given(remaining=st.floats(0, 80), request=st.floats(-20, 20), efficiency=EFFICIENCY, connected=st.booleans())
def test_request_is_never_over_served(remaining, request, efficiency, connected):
    new_remaining, power = devices.request_step(
        np.array([remaining]), np.array([request]), max_power=7.4, efficiency=efficiency, hours=1.0,
        connected=np.array([connected]),
    )  # fmt: skip
    assert 0.0 <= power[0] <= 7.4 and (connected or power[0] == 0.0)
    assert new_remaining[0] >= 0.0
    np.testing.assert_allclose(remaining - new_remaining[0], efficiency * power[0], atol=1e-9)


def test_thermal_zone_hand_worked_step():
    # 2 kWh of heat enter a 10 kWh/K zone with 2% loss per hour, the heat pump removes 3 x 0.5 kWh:
    # x' = 0.98 * 1.0 + (2 - 1.5) / 10 = 1.03 degrees; 0.03 outside a 1-degree band.
    deviation = devices.thermal_step(1.0, 0.5, 2.0, cop=3.0, thermal_mass=10.0, loss=0.02, hours=1.0)
    assert deviation == 1.03 or abs(deviation - 1.03) < 1e-12
    assert abs(devices.comfort_violation(deviation, 1.0) - 0.03) < 1e-12
    assert devices.comfort_violation(-1.5, 1.0) == 0.5
