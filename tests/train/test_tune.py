"""The search space of ``evosparse tune``: forms, values checked by each setting's rule, the [tune] table.

The searches themselves run on Ray in tests/cli/test_tune.py.
"""

from __future__ import annotations

import pytest

from evosparse.train import TrainConfig
from evosparse.train.tune import Dimension, parse_dimension, read_recipe


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lr=loguniform(1e-3,1e-1)", Dimension("lr", "loguniform", (1e-3, 1e-1))),
        ("lr=log(1e-3, 0.1)", Dimension("lr", "loguniform", (1e-3, 0.1))),
        ("momentum=uniform(0,0.95)", Dimension("momentum", "uniform", (0.0, 0.95))),
        ("batch-size=randint(16,64)", Dimension("batch_size", "randint", (16, 64))),
        ("hidden=choice([64],[128, 128])", Dimension("hidden", "choice", ((64,), (128, 128)))),
        ("hidden=grid(64,[32,32])", Dimension("hidden", "grid", ((64,), (32, 32)))),
        ("activation=choice(relu,'tanh')", Dimension("activation", "choice", ("relu", "tanh"))),
        ("nesterov=grid(true,false)", Dimension("nesterov", "grid", (True, False))),
        ("rewind_epoch=choice(none,0)", Dimension("rewind_epoch", "choice", (None, 0))),
    ],
)
def test_search_forms(text, expected):
    dimension = parse_dimension(text)
    assert dimension == expected
    assert parse_dimension(dimension.text()) == expected  # the text written to tune.json reads back


ALLOWED = "NAME=uniform(a,b), NAME=loguniform(a,b), NAME=log(a,b), NAME=randint(a,b)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lr", f"--search 'lr': expected NAME=FORM(...), one of {ALLOWED}"),
        ("lr=normal(0,1)", "--search 'lr=normal(0,1)': unknown form 'normal'; allowed forms: NAME=uniform(a,b)"),
        ("lr=choice()", "--search 'lr=choice()': empty value in choice(...)"),
        ("lr=uniform(0.1)", "--search 'lr=uniform(0.1)': uniform takes two bounds, a low and a high; got 1 values"),
        ("lr=uniform(0.1,0.01)", "the low bound must be below the high one, got 0.1 and 0.01"),
        ("lr=loguniform(0,0.1)", "loguniform needs bounds > 0 (a log scale), got 0.0"),
        ("lr=uniform(-1,1)", "--search 'lr=uniform(-1,1)': lr must be a finite number > 0, got -1.0"),
        ("momentum=choice(0.5,1.5)", "momentum must be in [0, 1), got 1.5"),
        ("batch_size=uniform(8,64)", "uniform draws real numbers, but batch_size is an integer setting; use randint"),
        ("lr=randint(1,2)", "randint draws integers, but lr is a real setting; use uniform(a,b) or loguniform(a,b)"),
        ("hidden=uniform(1,2)", "hidden is a list setting; use choice(...) or grid(...)"),
        ("hidden=choice([32,x])", "'[32,x]' is not a list such as [64,64]"),
        ("activation=choice(relu,swish)", "activation must be one of relu, srelu, allrelu, tanh, sigmoid; got 'swish'"),
        ("momentm=uniform(0,0.9)", "'momentm' is not a setting a search can set; did you mean 'momentum'?"),
        ("threads=choice(1,2)", "'threads' is not a setting a search can set"),
    ],
)
def test_bad_search_is_one_line_naming_the_flag(text, message):
    with pytest.raises(ValueError) as error:
        parse_dimension(text)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_recipe_file_with_a_tune_table(tmp_path):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        '[model]\nhidden = [32]\n[run]\nepochs = 3\n[tune]\nsamples = 2\n[tune.search]\nlr = "log(1e-3, 1e-1)"\n'
    )
    values, table = read_recipe(recipe)
    assert values == {"hidden": [32], "epochs": 3} and table == {"samples": 2, "search": {"lr": "log(1e-3, 1e-1)"}}
    assert TrainConfig.from_dict(values).model.hidden == (32,)
    recipe.write_text("[tune]\nsample = 2\n")
    with pytest.raises(ValueError, match=r"recipe.toml: \[tune\] has unknown key 'sample'; allowed: samples,"):
        read_recipe(recipe)
    recipe.write_text("[tune.search]\nlr = 0.1\n")
    with pytest.raises(ValueError, match=r"\[tune.search\] must map setting names to texts"):
        read_recipe(recipe)
    recipe.write_text("[run]\nepoch = 3\n")
    with pytest.raises(ValueError, match="recipe.toml.*epoch"):
        read_recipe(recipe)
