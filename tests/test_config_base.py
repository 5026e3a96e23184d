"""The config base (evosparse._config): what every config inherits, checked on small configs declared here."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evosparse._config import Config, Rule, at_least, between, is_real, one_of, param, positive, section, subset_of


# The ten-line example of the base's docstring, as an RL config would declare it.
@dataclass(frozen=True)
class PPOConfig(Config):
    """Settings of PPO (Schulman et al. 2017)."""

    lr: float = param(3e-4, "Adam learning rate (paper: 3e-4)", rule=positive)
    clip: float = param(0.2, "clipping epsilon (paper: 0.2)", rule=between(0, 1, low_open=True))
    policy: str = param("mlp", "policy network", rule=one_of(("mlp", "sparse_mlp")))
    n_envs: int = param(8, "parallel environments", rule=at_least(1))
    target_kl: float | None = param(None, "stop an update above this KL (None: never)", rule=positive)
    hidden: tuple[int, ...] = param((64, 64), "hidden sizes")
    normalize: bool = param(True, "normalise advantages")

    def validate(self) -> None:
        if self.policy == "sparse_mlp" and self.n_envs > 64:
            raise ValueError(f"n_envs ({self.n_envs}) must be <= 64 with policy='sparse_mlp'")


def _must_be_even(value: int) -> None:  # a rule owned elsewhere: a function that raises its own error
    if value % 2:
        raise ValueError(f"steps must be even, got {value}")


@dataclass(frozen=True)
class RunSection(Config):
    """How long."""

    steps: int = param(10, "steps", rule=_must_be_even)
    name: str = param("sgd", "optimizer name", rule=one_of(("sgd", "adam")), flag="optimizer")
    out_dir: str | None = param(None, "folder")


@dataclass(frozen=True)
class Agent(Config):
    """An agent with two sections."""

    ppo: PPOConfig = section(PPOConfig, "the algorithm")
    run: RunSection = section(RunSection, "the run")


def test_defaults_and_docs():
    assert Agent().ppo.lr == 3e-4 and Agent().run.name == "sgd"
    docs = Agent.field_docs()
    assert list(docs)[:2] == ["lr", "clip"] and "optimizer" in docs and docs["optimizer"] == "optimizer name"
    assert Agent.flat_names()[-3:] == ["steps", "optimizer", "out_dir"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"lr": 0}, "lr must be a finite number > 0, got 0.0"),
        ({"clip": 1.5}, "clip must be in (0, 1], got 1.5"),
        ({"policy": "cnn"}, "policy must be one of mlp, sparse_mlp; got 'cnn'"),
        ({"n_envs": 0}, "n_envs must be an integer >= 1, got 0"),
        ({"n_envs": True}, "n_envs must be an integer >= 1, got True"),
        ({"target_kl": -1.0}, "target_kl must be a finite number > 0 or None, got -1.0"),
        ({"hidden": [64, "x"]}, "hidden must be"),
        ({"normalize": "yes"}, "normalize must be true or false, got 'yes'"),
        ({"policy": "sparse_mlp", "n_envs": 65}, "n_envs (65) must be <= 64 with policy='sparse_mlp'"),
    ],
)
def test_rules_name_field_value_and_range(values, message):
    with pytest.raises(ValueError) as error:
        PPOConfig.from_dict(values)
    assert message in str(error.value)


def test_untyped_tuple_items_are_not_checked_by_type_but_a_rule_can():
    assert PPOConfig(hidden=[3, 4]).hidden == (3, 4)  # a list becomes a tuple
    rule = subset_of(("a", "b"))
    with pytest.raises(ValueError, match="x must be a non-empty list of a, b; got"):
        rule.check("x", ("a", "c"))


def test_a_rule_function_owned_elsewhere_raises_its_own_message():
    with pytest.raises(ValueError, match="steps must be even, got 3"):
        RunSection(steps=3)


def test_flat_names_route_into_sections_and_aliases_are_the_flags():
    agent = Agent.from_dict({"lr": 0.1, "optimizer": "adam", "steps": 4})
    assert (agent.ppo.lr, agent.run.name, agent.run.steps) == (0.1, "adam", 4)
    assert agent.to_flat()["optimizer"] == "adam"
    nested = Agent.from_dict({"ppo": {"lr": 0.1}, "run": {"name": "adam", "steps": 4}})
    assert nested == agent
    assert agent.replace(optimizer="sgd").run.name == "sgd"
    assert agent.replace(run={"steps": 6}).run == RunSection(steps=6, name="adam")
    assert Agent.flatten({"ppo": {"lr": 0.1}, "run": {"name": "adam"}}) == {"lr": 0.1, "optimizer": "adam"}


def test_a_setting_given_twice_differently_is_an_error():
    with pytest.raises(ValueError, match="sets lr twice"):
        Agent.from_dict({"ppo": {"lr": 0.1}, "lr": 0.2})
    assert Agent.from_dict({"ppo": {"lr": 0.1}, "lr": 0.1}).ppo.lr == 0.1


def test_unknown_keys_suggest_the_closest_at_every_level():
    with pytest.raises(ValueError, match=r"unknown key\(s\) in config: 'lrr' \(did you mean 'lr'\?\); valid keys: lr,"):
        Agent.from_dict({"lrr": 0.1})
    with pytest.raises(ValueError, match=r"in config \[run\]: 'stepz' \(did you mean 'steps'\?\)"):
        Agent.from_dict({"run": {"stepz": 2}})
    with pytest.raises(ValueError, match="unknown key.*replace"):
        Agent().replace(learning_rate=0.1)
    with pytest.raises(ValueError, match="must be a table of settings, got list"):
        Agent.from_dict([1, 2])


def test_frozen_and_sections_built_from_tables():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Agent().ppo.lr = 1.0
    assert Agent(ppo={"lr": 0.5}).ppo.lr == 0.5
    with pytest.raises(ValueError, match="ppo must be a PPOConfig or a table"):
        Agent(ppo=3)


@settings(max_examples=40, deadline=None)
@given(
    lr=st.floats(min_value=1e-9, max_value=1e9),
    clip=st.floats(min_value=0, max_value=1, exclude_min=True),
    target_kl=st.none() | st.floats(min_value=1e-6, max_value=10),
    hidden=st.lists(st.integers(1, 10**6), min_size=0, max_size=4),
    out_dir=st.none() | st.text(min_size=1).filter(lambda s: s.strip()),
)
def test_toml_and_json_round_trip(lr, clip, target_kl, hidden, out_dir):
    agent = Agent(
        ppo=PPOConfig(lr=lr, clip=clip, target_kl=target_kl, hidden=tuple(hidden)), run=RunSection(out_dir=out_dir)
    )
    assert Agent.from_toml(agent.to_toml()) == agent
    assert Agent.from_json(agent.to_json()) == agent
    assert Agent.from_dict(json.loads(agent.to_json())) == agent


def test_toml_tables_docs_and_none():
    text = Agent().to_toml()
    assert "[ppo]  # the algorithm" in text and "[run]  # the run" in text
    assert "# Adam learning rate (paper: 3e-4)\nlr = 0.0003" in text
    assert "# target_kl: stop an update above this KL (None: never) (none)" in text  # None default: left out


def test_none_where_the_default_is_a_number_is_written_as_none():
    @dataclass(frozen=True)
    class Stop(Config):
        """Stopping."""

        after: int | None = param(20, "stop after", rule=at_least(1))

    text = Stop(after=None).to_toml()
    assert 'after = "none"' in text and Stop.from_toml(text).after is None
    assert Stop.from_dict({"after": "None"}).after is None


def test_toml_table_wrapper():
    @dataclass(frozen=True)
    class Wrapped(Config):
        """Settings that a file may wrap in [algo]."""

        toml_table = "algo"
        size: int = param(3, "size", rule=at_least(1))

    assert Wrapped.from_toml("[algo]\nsize = 5\n").size == 5
    assert Wrapped.from_toml("size = 6\n").size == 6


def test_files(tmp_path):
    agent = Agent.from_dict({"lr": 0.01, "steps": 12})
    for name in ("a.toml", "a.json"):
        assert Agent.from_file(agent.save(tmp_path / name)) == agent
    assert Agent.values_from_file(tmp_path / "a.toml")["ppo"]["lr"] == 0.01


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"lr = \n", "is not valid TOML"),
        (b"lr = 0.1\nsteps = 3\n", "steps must be even, got 3"),
        (b'lr = "fast"\n', "lr must be a finite number > 0, got 'fast'"),
        (b"lrr = 0.1\n", "'lrr' (did you mean 'lr'?)"),
        (b"lr = 0.1 # \xff\xfe\n", "not UTF-8 text (byte 0xff at offset 11)"),
    ],
    ids=["syntax", "rule", "text for a number", "unknown key", "not utf-8"],
)
def test_file_errors_name_the_file(tmp_path, content, message):
    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    with pytest.raises(ValueError) as error:
        Agent.from_file(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="cannot read config file .*absent.toml"):
        Agent.from_file(tmp_path / "absent.toml")


def test_flat_names_must_be_unique():
    @dataclass(frozen=True)
    class Clash(Config):
        """Two sections with the same setting."""

        a: RunSection = section(RunSection, "a")
        b: RunSection = section(RunSection, "b")

    with pytest.raises(TypeError, match="flat names must be unique, repeated: optimizer, out_dir, steps"):
        Clash.flat_names()


def test_rule_helpers():
    assert Rule(is_real, "a finite number").expected == "a finite number"
    between(0, float("inf"), high_open=True).check("l1", 0.0)
    with pytest.raises(ValueError, match=r"l1 must be in \[0, inf\), got -1"):
        between(0, float("inf"), high_open=True).check("l1", -1)
    with pytest.raises(TypeError, match="immutable"):
        param([1, 2], "a list default")


def test_one_of_numbers_wants_the_options_own_type():
    # 1.0 and True compare equal to 1 but are not the option 1 (a float steps_per_hour broke the market at reset).
    from evosparse.envs.market import MarketConfig

    rule = one_of((1, 4))
    assert rule.accepts(4) and not rule.accepts(4.0) and not rule.accepts(True) and not rule.accepts(2)
    assert MarketConfig(steps_per_hour=4).steps_per_hour == 4
    with pytest.raises(ValueError, match="steps_per_hour must be one of 1, 4"):
        MarketConfig(steps_per_hour=1.0)
