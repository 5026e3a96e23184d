"""Property: whatever bytes of a good file are changed or cut, a loader returns exactly the saved data or
raises its one-line FileFormatError -- never another exception, never other data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evosparse.io import FileFormatError, content_digest, dump_arrays, dump_json, load_arrays, load_json

DATA = {"name": "run", "epochs": [1, 2, 3], "loss": 0.25, "weights": np.linspace(-1, 1, 12).reshape(3, 4)}
FILES = {
    "npz": (dump_arrays(DATA, format="f"), load_arrays),
    "json": (dump_json({k: v for k, v in DATA.items() if k != "weights"}, format="f"), load_json),
}


@pytest.mark.parametrize("kind", sorted(FILES))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=4), cut=st.integers(0, 10**6))
def test_damaged_file_is_refused_or_identical(tmp_path, kind, edits, cut):
    good, load = FILES[kind]
    data = bytearray(good)
    for position, value in edits:
        data[position % len(data)] = value
    data = data[: len(data) - cut % (len(data) + 1)] if cut % 3 == 0 else data  # a third of the cases truncate
    path = tmp_path / f"fuzz.{kind}"
    path.write_bytes(bytes(data))
    expected = load(tmp_path / f"good.{kind}", format="f") if (tmp_path / f"good.{kind}").write_bytes(good) else None
    try:
        loaded = load(path, format="f")
    except FileFormatError as error:
        assert "\n" not in str(error) and "fuzz" in str(error)
    else:
        assert content_digest(loaded) == content_digest(expected)
