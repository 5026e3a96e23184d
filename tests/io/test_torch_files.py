"""Torch state files: round trip, checksum, and crafted files that never run code."""

from __future__ import annotations

import pytest
import torch
from hostile import flipped, pickle_bytes, positions, torch_payload_bytes

from evosparse.io import FileFormatError
from evosparse.io.torch_files import load_torch, save_torch, tensor_digest


def state() -> dict:
    generator = torch.Generator().manual_seed(0)
    return {
        "epoch": 3,
        "model": {"w": torch.randn(5, 4, generator=generator), "rows": torch.arange(7)},
        "half": torch.ones(3, dtype=torch.bfloat16),
        "generator": generator.get_state(),
        "history": [{"loss": 0.5, "note": "x"}],
        "optimizer": {"state": {0: {"momentum": torch.zeros(4)}}, "param_groups": [{"lr": 0.1, "params": [0]}]},
    }


def test_round_trip(tmp_path):
    data = state()
    loaded = load_torch(save_torch(tmp_path / "c.pt", data, format="ckpt"), format="ckpt")
    assert tensor_digest(loaded) == tensor_digest(data)
    assert torch.equal(loaded["model"]["w"], data["model"]["w"])


def test_changed_tensor_fails_checksum(tmp_path):
    path = save_torch(tmp_path / "c.pt", state(), format="ckpt")
    payload = torch.load(path, weights_only=True)
    payload["data"]["model"]["w"][0, 0] += 1
    torch.save(payload, path)
    with pytest.raises(FileFormatError, match="fails its SHA-256 checksum"):
        load_torch(path, format="ckpt")


def test_byte_flips_and_truncations_refused(tmp_path):
    data = state()
    good = save_torch(tmp_path / "c.pt", data, format="ckpt").read_bytes()
    refused = 0
    spots = positions(len(good), 120)
    for position in spots:
        (tmp_path / "flip.pt").write_bytes(flipped(good, position))
        try:
            loaded = load_torch(tmp_path / "flip.pt", format="ckpt")
        except FileFormatError as error:
            assert "flip.pt" in str(error) and "\n" not in str(error)
            refused += 1
        else:  # a flip in an unused header field: the data must be exactly the saved data
            assert tensor_digest(loaded) == tensor_digest(data)
    assert refused >= 0.5 * len(spots)
    for length in positions(len(good), 40)[:-1]:
        (tmp_path / "cut.pt").write_bytes(good[:length])
        with pytest.raises(FileFormatError, match="cut.pt"):
            load_torch(tmp_path / "cut.pt", format="ckpt")


def test_crafted_files_never_run_code(tmp_path):
    marker = tmp_path / "pwned"
    (tmp_path / "payload.pt").write_bytes(torch_payload_bytes(marker))
    with pytest.raises(FileFormatError, match="never loads"):
        load_torch(tmp_path / "payload.pt", format="evosparse-checkpoint")
    (tmp_path / "plain.pkl").write_bytes(pickle_bytes(marker))
    with pytest.raises(FileFormatError, match="plain.pkl"):
        load_torch(tmp_path / "plain.pkl", format="evosparse-checkpoint")
    assert not marker.exists()


def test_foreign_torch_file_refused(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(FileFormatError, match="other.pt is not a train checkpoint"):
        load_torch(tmp_path / "other.pt", format="ckpt", what="train checkpoint")


def test_the_digest_of_written_files_never_changes():
    """Checkpoints written by earlier versions carry this digest of this content (computed by the copying
    implementation of 0.12): a change of how the digest is
    computed (e.g. hashing arrays in place instead of copying their bytes) must give the same value, or every
    existing checkpoint would be refused as damaged."""
    import numpy as np

    data = {
        "a": torch.arange(10.0),
        "b": [np.arange(5), torch.zeros(0), torch.ones(3, dtype=torch.bool), torch.arange(6).reshape(2, 3).t()],
        "c": [np.zeros((2, 0)), "x", 3, 2.5, None, b"by", torch.arange(4, dtype=torch.int16)],
    }
    assert tensor_digest(data) == "c9ceebc70ee45dc02c12ffbff75d3b5904cb9c162919a26ea0c92102334969a7"
