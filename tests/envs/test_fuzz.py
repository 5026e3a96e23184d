"""Hypothesis fuzzing of the environments' configs and of ``grid run``'s flags.

A config with random values is either a valid environment that resets and steps to finite numbers, or a
one-line ValueError naming the field; ``evosparse grid run`` with random flags exits 0, or exits 2 with one
``error:`` line, never a traceback.
"""

from __future__ import annotations

import dataclasses
import math
import typing

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evosparse.cli.main import main
from evosparse.envs import ENVIRONMENTS

NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-3.0, 30.0),
    st.integers(-3, 30),
    st.sampled_from([0, 1, 0.0, 1.0, 0.5, 1e300, -1e-300]),
)
JUNK = st.one_of(st.booleans(), st.none(), st.text(max_size=4), st.lists(st.integers(-1, 4), max_size=3))
# Fields that name files or folders, or hold structured values: a few meaningful values instead of noise.
SPECIAL = {
    "data_dir": st.sampled_from([None, "/nonexistent/citylearn"]),
    "price_file": st.sampled_from([None, "/nonexistent/prices.csv"]),
    "changes": st.sampled_from([(), ({"kind": "battery_failure", "hour": 3},), ({"kind": "flood", "hour": 1},)]),
    "buildings": st.one_of(st.lists(st.integers(-1, 4), max_size=3).map(tuple), JUNK),
    "n_buildings": st.one_of(st.integers(-2, 12), JUNK, st.floats(0, 5)),  # a few, to keep examples fast
    "episode_hours": st.one_of(st.integers(-2, 72), st.sampled_from([24 * 400, 0.5]), JUNK),
}


def field_values(config_class) -> st.SearchStrategy[dict]:
    """A random subset of the config's fields, each with a random (often invalid) value of any type."""
    hints = typing.get_type_hints(config_class)
    strategies = {}
    for field in dataclasses.fields(config_class):
        hint = hints[field.name]
        if field.name in SPECIAL:
            strategies[field.name] = SPECIAL[field.name]
        elif hint is str:
            choices = [field.default, "day_ahead", "tariff", "daily", "train", "test", "2023-08-01", "not a date"]
            strategies[field.name] = st.one_of(st.sampled_from(choices), st.text(max_size=6), NUMBERS)
        else:
            strategies[field.name] = st.one_of(NUMBERS, NUMBERS, JUNK)
    return st.fixed_dictionaries({}, optional=strategies)


def check_one_config(name: str, values: dict) -> None:
    spec = ENVIRONMENTS[name]
    values = {"episode_hours": 24, **values} if "episode_hours" not in values else values
    try:
        env = spec.env(**values)
    except (ValueError, FileNotFoundError) as error:
        message = str(error)
        assert message and "\n" not in message, message
        return
    observation, _ = env.reset(seed=0)
    assert np.all(np.isfinite(observation)), (values, observation)
    observation, reward, _, _, _ = env.step(env.action_space.sample())
    assert np.all(np.isfinite(observation)) and math.isfinite(reward), (values, observation, reward)


@pytest.mark.parametrize("name", ["building", "microgrid", "market", "community"])
def test_random_configs_make_a_working_env_or_one_clear_error(name):
    config_class = ENVIRONMENTS[name].config

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(values=field_values(config_class))
    def check(values):
        check_one_config(name, values)

    check()


# ---- grid run -------------------------------------------------------------------------------------------------
BAD = st.sampled_from(["x", "1.5", "", "-0", "-1", "400", "1e9", "99999999999999999999"])


def mostly(valid: st.SearchStrategy) -> st.SearchStrategy:
    """Valid values three times out of four, so that most runs get past the first check."""
    return st.one_of(valid, valid, valid, BAD)


FLAGS = {
    "--controller": st.one_of(
        st.lists(st.sampled_from(["none", "rule", "random", "optimal", "smart", "rule:1", ""]), max_size=3).map(
            ",".join
        ),
        st.text(max_size=5),
    ),
    "--start-day": mostly(st.integers(0, 366)),
    "--days": mostly(st.integers(0, 3)),
    "--seed": mostly(st.integers(-3, 2**64)),
    "--building": mostly(st.integers(-1, 5)),
    "--n-buildings": mostly(st.integers(0, 6)),
    "--steps-per-hour": mostly(st.sampled_from([1, 4, 2])),
    "--plot-week": mostly(st.integers(-1, 1)),
    "--plot": st.sampled_from(["week.txt", "no/such/dir/week.png", "."]),
    "--price-file": st.sampled_from(["/nonexistent/prices.csv", "."]),
    "--data-dir": st.sampled_from(["/nonexistent", "."]),
    "--set": st.sampled_from(
        [
            "battery_kwh=3",
            "battery_kwh=-1",
            "initial_soc=2",
            "pv_kw=1e400",
            "split=test",
            "split=train",
            "random_start=true",
            "nope=1",
            "=",
            "cop",
            "battery_kw=0",
            "hvac_kw=0",
            "ev_kw=0",
            "generator_kw=1e6",
        ]
    ),
}


@st.composite
def grid_argv(draw) -> list[str]:
    argv = ["grid", "run", draw(st.sampled_from(["building", "microgrid", "market", "community", "plant"]))]
    argv += ["--days", "1"]  # keep most runs to one day; a drawn --days overrides it
    for flag in draw(st.lists(st.sampled_from(sorted(FLAGS)), max_size=4, unique=True)):
        argv += [flag, str(draw(FLAGS[flag]))]
    if draw(st.booleans()):
        argv.append(draw(st.sampled_from(["--peer-to-peer", "--json", "--bogus"])))
    return argv


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(argv=grid_argv())
def test_grid_run_flags_exit_0_or_2_with_one_error_line(argv):
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's own errors
            code = exit_.code
    if code == 0:
        assert out.getvalue().strip(), argv
    else:
        lines = err.getvalue().strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (argv, code, err.getvalue())
