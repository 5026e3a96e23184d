"""JSON and npz files: round trips, and every damaged, foreign or hostile file refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hostile import flipped, object_npz_bytes, pickle_bytes, positions

from evosparse.io import FileFormatError, content_digest, load_arrays, load_json, save_arrays, save_json

NESTED = {
    "name": "run",
    "count": 3,
    "big": 2**100 + 7,  # numpy random-generator states hold 128-bit integers
    "ratio": 0.1,
    "missing": None,
    "flag": True,
    "nan": float("nan"),
    "list": [1, "two", [3.0, {"four": 4}]],
}


def arrays_data() -> dict:
    rng = np.random.default_rng(0)
    return {
        **NESTED,
        "weights": rng.normal(size=(4, 3)),
        "ids": np.arange(5, dtype=np.int64),
        "mask": np.array([True, False]),
        "codes": np.array([1, 2], dtype=np.int8),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "genomes": [{"key": i, "weights": rng.normal(size=i)} for i in range(3)],
    }


def assert_same(a, b) -> None:
    assert content_digest(a) == content_digest(b)


def test_json_round_trip(tmp_path):
    path = save_json(tmp_path / "a.json", NESTED, format="test-format")
    assert_same(load_json(path, format="test-format"), NESTED)


def test_arrays_round_trip_keeps_dtypes_and_shapes(tmp_path):
    data = arrays_data()
    loaded = load_arrays(save_arrays(tmp_path / "a.npz", data, format="test-format"), format="test-format")
    assert_same(loaded, data)
    assert loaded["codes"].dtype == np.int8 and loaded["empty"].shape == (0, 3)
    assert loaded["big"] == 2**100 + 7
    # A standard npz: numpy reads it without pickle.
    with np.load(tmp_path / "a.npz", allow_pickle=False) as members:
        assert "__meta__" in members.files


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({1: "x"}, "keys must be strings"),
        ({"a": np.zeros(2)}, "save_arrays"),
        ({"a": object()}, "cannot store"),
    ],
)
def test_json_refuses_what_would_not_round_trip(tmp_path, bad, message):
    with pytest.raises(TypeError, match=message):
        save_json(tmp_path / "a.json", bad, format="f")
    assert not (tmp_path / "a.json").exists()


def test_arrays_refuse_object_arrays_and_reserved_keys(tmp_path):
    with pytest.raises(TypeError, match="pickle"):
        save_arrays(tmp_path / "a.npz", {"a": np.array([{}], dtype=object)}, format="f")
    with pytest.raises(TypeError, match="reserved"):
        save_arrays(tmp_path / "a.npz", {"a": {"__array__": "a0"}}, format="f")


@pytest.mark.parametrize("kind", ["json", "npz"])
def test_foreign_format_tag_and_version_refused(tmp_path, kind):
    save, load = (save_json, load_json) if kind == "json" else (save_arrays, load_arrays)
    path = save(tmp_path / f"a.{kind}", {"x": 1}, format="other-format")
    with pytest.raises(FileFormatError, match=r"'other-format' file, not a my checkpoint"):
        load(path, format="my-format", what="my checkpoint")
    save(path, {"x": 1}, format="my-format", version=2)
    with pytest.raises(FileFormatError, match="format version 2"):
        load(path, format="my-format")


def test_plain_npz_and_random_bytes_refused(tmp_path):
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(FileFormatError, match="plain.npz is not a f file"):
        load_arrays(tmp_path / "plain.npz", format="f")
    (tmp_path / "noise").write_bytes(bytes(range(256)) * 3)
    for load in (load_json, load_arrays):
        with pytest.raises(FileFormatError, match="noise"):
            load(tmp_path / "noise", format="f")
    with pytest.raises(FileFormatError, match="no f file at"):
        load_json(tmp_path / "missing.json", format="f")


def test_json_edited_by_hand_fails_checksum(tmp_path):
    path = save_json(tmp_path / "a.json", {"epochs": 10}, format="f")
    envelope = json.loads(path.read_text())
    envelope["data"]["epochs"] = 11
    path.write_text(json.dumps(envelope))
    with pytest.raises(FileFormatError, match="fails its SHA-256 checksum"):
        load_json(path, format="f")


@pytest.mark.parametrize("kind", ["json", "npz"])
def test_every_truncation_refused(tmp_path, kind):
    save, load = (save_json, load_json) if kind == "json" else (save_arrays, load_arrays)
    good = save(tmp_path / "good", arrays_data() if kind == "npz" else NESTED, format="f").read_bytes()
    for length in positions(len(good), 60)[:-1]:
        (tmp_path / "cut").write_bytes(good[:length])
        with pytest.raises(FileFormatError, match="cut"):
            load(tmp_path / "cut", format="f")


@pytest.mark.parametrize("kind", ["json", "npz"])
def test_byte_flips_refused_or_harmless(tmp_path, kind):
    """A flipped byte is refused, or (zip header fields such as timestamps) leaves the data unchanged."""
    save, load = (save_json, load_json) if kind == "json" else (save_arrays, load_arrays)
    data = arrays_data() if kind == "npz" else NESTED
    good = save(tmp_path / "good", data, format="f").read_bytes()
    refused = 0
    for position in positions(len(good), 150):
        (tmp_path / "flip").write_bytes(flipped(good, position))
        try:
            loaded = load(tmp_path / "flip", format="f")
        except FileFormatError as error:
            assert "\n" not in str(error) and "flip" in str(error)
            refused += 1
        else:
            assert_same(loaded, data)
    assert refused >= 0.5 * len(positions(len(good), 150))  # the rest hit unused zip header fields


def test_pickle_payloads_never_run(tmp_path):
    marker = tmp_path / "pwned"
    for name, payload in [
        ("bare.pkl", pickle_bytes(marker, wrap=False)),
        ("wrapped.pkl", pickle_bytes(marker)),
        ("objects.npz", object_npz_bytes(marker)),
    ]:
        (tmp_path / name).write_bytes(payload)
        for load in (load_json, load_arrays):
            with pytest.raises(FileFormatError, match=name):
                load(tmp_path / name, format="evosparse-neat-checkpoint")
    assert not marker.exists()
    with pytest.raises(FileFormatError, match="never loads"):
        load_arrays(tmp_path / "objects.npz", format="f")
