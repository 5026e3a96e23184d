"""Historical markings: one innovation number per new structure, shared within a generation.

"By keeping a list of the innovations that occurred in the current generation, it is possible to
ensure that when the same structure arises more than once through independent mutations in the same
generation, each identical mutation is assigned the same innovation number" (paper, Section 3.2).
A split of connection ``i`` is the same structure wherever it happens in one generation, so it gets the
same new node id and the same two connection innovations, too.

Paper: Stanley & Miikkulainen 2002, Section 3.2 (tracking genes through historical markings).
"""

from __future__ import annotations


class InnovationTracker:
    """Hands out innovation numbers and node ids; remembers this generation's mutations."""

    def __init__(self, *, next_innovation: int = 0, next_node_id: int = 0) -> None:
        self.next_innovation = next_innovation
        self.next_node_id = next_node_id
        self._connections: dict[tuple[int, int], int] = {}  # (source, target) -> innovation, this generation
        self._splits: dict[int, tuple[int, int, int]] = {}  # split innovation -> (node, innovation in, out)

    def new_generation(self) -> None:
        """Forget this generation's mutations; numbers keep counting up (never reused across generations)."""
        self._connections.clear()
        self._splits.clear()

    def connection(self, source: int, target: int) -> int:
        """Innovation number of a new connection ``source -> target``."""
        key = (source, target)
        if key not in self._connections:
            self._connections[key] = self._take_innovation()
        return self._connections[key]

    def split(self, innovation: int) -> tuple[int, int, int]:
        """(new node id, innovation of source -> node, innovation of node -> target) for a split connection."""
        if innovation not in self._splits:
            self._splits[innovation] = (self.fresh_node_id(), self._take_innovation(), self._take_innovation())
        return self._splits[innovation]

    def fresh_split(self) -> tuple[int, int, int]:
        """Numbers for a split that must not be shared (the genome already holds the shared node)."""
        return self.fresh_node_id(), self._take_innovation(), self._take_innovation()

    def fresh_node_id(self) -> int:
        node = self.next_node_id
        self.next_node_id += 1
        return node

    def _take_innovation(self) -> int:
        innovation = self.next_innovation
        self.next_innovation += 1
        return innovation
