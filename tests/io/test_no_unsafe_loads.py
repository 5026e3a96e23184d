"""An audit of the source: no load path may unpickle a file (the guarantee in the README).

Every ``numpy.load`` passes ``allow_pickle=False``, every ``torch.load`` passes ``weights_only=True``, and
``pickle`` loads nothing, except the CIFAR-10 reader's restricted unpickler (numpy arrays and plain
containers only; tested with a code payload in test_hostile_loaders.py).
"""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "evosparse"
RESTRICTED_UNPICKLER = SRC / "data" / "formats.py"


def calls(text: str, name: str) -> list[str]:
    """The source of every call ``name(...)`` in ``text`` (to its closing parenthesis)."""
    found = []
    for match in re.finditer(re.escape(name) + r"\(", text):
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(text)):
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            if depth == 0:
                break
        found.append(text[match.start() : end + 1])
    return found


def test_every_load_is_data_only():
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        where = path.relative_to(SRC.parent)
        for call in calls(text, "np.load") + calls(text, "numpy.load"):
            if "allow_pickle=False" not in call:
                problems.append(f"{where}: {call}")
        for call in calls(text, "torch.load"):
            if "weights_only=True" not in call:
                problems.append(f"{where}: {call}")
        for name in ("pickle.load", "pickle.loads", "pickle.Unpickler", "dill.load", "joblib.load", "shelve.open"):
            if calls(text, name) and not (path == RESTRICTED_UNPICKLER and name == "pickle.Unpickler"):
                problems.append(f"{where}: uses {name}")
    assert not problems, "unsafe load paths:\n" + "\n".join(problems)


def test_the_audit_catches_an_unsafe_call():
    assert calls("x = np.load(path, mmap_mode='r')\n", "np.load") == ["np.load(path, mmap_mode='r')"]
    assert "allow_pickle=False" not in calls("np.load(open(p), allow_pickle=True)", "np.load")[0]
