"""Population-wide kernels: a generation's genomes back to back in flat arrays, and the steps NEAT does
to all of them (compile, speciate, crossover, mutate) as one compiled call each instead of one Python
call per genome.

They do what the per-genome modules do (``distance``, ``crossover``, ``mutation``; the networks a slow
node-by-node evaluation computes); those stay the readable reference, and ``tests/neat/test_batch.py``,
``test_crossover.py`` and ``test_phenotype.py`` check that the two agree.
Random numbers are drawn from the population's ``numpy.random.Generator`` up front and handed to the
kernels, so runs stay reproducible from the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from evosparse.neat.distance import gene_counts
from evosparse.neat.genome import Genome

_DTYPES = {
    "node_ids": np.int64,
    "biases": np.float64,
    "activations": np.int8,
    "innovations": np.int64,
    "sources": np.int64,
    "targets": np.int64,
    "weights": np.float64,
    "enabled": np.bool_,
}


@dataclass
class Flat:
    """Genomes back to back: genome g owns nodes ``node_ptr[g]:node_ptr[g+1]`` and connections
    ``connection_ptr[g]:connection_ptr[g+1]`` of the concatenated gene arrays."""

    node_ptr: np.ndarray
    connection_ptr: np.ndarray
    node_ids: np.ndarray
    biases: np.ndarray
    activations: np.ndarray
    innovations: np.ndarray
    sources: np.ndarray
    targets: np.ndarray
    weights: np.ndarray
    enabled: np.ndarray

    @property
    def n_genomes(self) -> int:
        return len(self.node_ptr) - 1

    @property
    def n_connections(self) -> np.ndarray:
        return np.diff(self.connection_ptr)


def _pointers(lengths: list[int]) -> np.ndarray:
    ptr = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=ptr[1:])
    return ptr


def flatten(genomes: list[Genome]) -> Flat:
    """The genes of ``genomes`` concatenated (one copy of every array), or the flat arrays they are
    still views of, when they are exactly one generation made by ``unflatten``, in order."""
    if genomes and _still_views(genomes):
        return genomes[0]._flat[0]
    node_ptr = _pointers([len(g.node_ids) for g in genomes])
    connection_ptr = _pointers([len(g.innovations) for g in genomes])
    arrays = {
        name: np.concatenate([getattr(g, name) for g in genomes]) if genomes else np.zeros(0, dtype=dtype)
        for name, dtype in _DTYPES.items()
    }
    return Flat(node_ptr=node_ptr, connection_ptr=connection_ptr, **arrays)


def _still_views(genomes: list[Genome]) -> bool:
    source = genomes[0]._flat
    if source is None or source[0].n_genomes != len(genomes):
        return False
    flat = source[0]
    ids, biases, activations = flat.node_ids, flat.biases, flat.activations
    innovations, sources, targets, weights, enabled = (
        flat.innovations,
        flat.sources,
        flat.targets,
        flat.weights,
        flat.enabled,
    )
    for index, genome in enumerate(genomes):  # any array replaced since (e.g. by mutation.mutate) -> copy
        mark = genome._flat
        if (
            mark is None
            or mark[0] is not flat
            or mark[1] != index
            or genome.weights.base is not weights
            or genome.enabled.base is not enabled
            or genome.biases.base is not biases
            or genome.innovations.base is not innovations
            or genome.node_ids.base is not ids
            or genome.sources.base is not sources
            or genome.targets.base is not targets
            or genome.activations.base is not activations
        ):
            return False
    return True


def unflatten(flat: Flat, keys: list[int]) -> list[Genome]:
    """One Genome per key, holding slices (views) of the flat arrays; the flat arrays must not be changed."""
    genomes = []
    new = Genome.__new__
    ids, biases, activations = flat.node_ids, flat.biases, flat.activations
    innovations, sources, targets, weights, enabled = (
        flat.innovations,
        flat.sources,
        flat.targets,
        flat.weights,
        flat.enabled,
    )
    node_bounds, connection_bounds = flat.node_ptr.tolist(), flat.connection_ptr.tolist()
    for g, key in enumerate(keys):
        genome = new(Genome)
        genome.key, genome.fitness, genome._flat = key, None, (flat, g)
        a, b = node_bounds[g], node_bounds[g + 1]
        genome.node_ids, genome.biases, genome.activations = ids[a:b], biases[a:b], activations[a:b]
        a, b = connection_bounds[g], connection_bounds[g + 1]
        genome.innovations, genome.sources, genome.targets = innovations[a:b], sources[a:b], targets[a:b]
        genome.weights, genome.enabled = weights[a:b], enabled[a:b]
        genomes.append(genome)
    return genomes


@numba.njit(cache=True)
def _group(keys, n_groups, start, grouped):
    """Counting sort into the given buffers: the indices j with keys[j] == k end up, in order, at
    grouped[start[k]:start[k+1]]; negative keys are left out."""
    start[: n_groups + 1] = 0
    for k in keys:
        if k >= 0:
            start[k + 1] += 1
    for k in range(n_groups):
        start[k + 1] += start[k]
    for j in range(len(keys)):  # fill, using start[k] as the cursor, then shift back
        k = keys[j]
        if k >= 0:
            grouped[start[k]] = j
            start[k] += 1
    for k in range(n_groups, 0, -1):
        start[k] = start[k - 1]
    start[0] = 0


# ---- compile: the networks of all genomes (what phenotype.Networks computes genome by genome) --------------
@numba.njit(cache=True)
def compile_flat(
    node_ptr,
    node_ids,
    biases,
    activations,
    connection_ptr,
    sources,
    targets,
    weights,
    enabled,
    n_inputs,
    n_outputs,
    feed_forward,
):
    """The arrays of ``phenotype.Networks`` for every genome: (genome_nodes, node_slot, node_bias,
    node_activation, node_connections, connection_source, connection_weight, output_slots, n_slots)."""
    n_genomes = len(node_ptr) - 1
    total_nodes, total_connections = node_ptr[-1], connection_ptr[-1]
    genome_nodes = np.zeros(n_genomes + 1, dtype=np.int64)
    node_slot = np.empty(total_nodes, dtype=np.int64)
    node_bias = np.empty(total_nodes)
    node_activation = np.empty(total_nodes, dtype=np.int8)
    node_connections = np.zeros(total_nodes + 1, dtype=np.int64)
    connection_source = np.empty(total_connections, dtype=np.int64)
    connection_weight = np.empty(total_connections)
    output_slots = np.empty((n_genomes, n_outputs), dtype=np.int64)
    n_slots = np.empty(n_genomes, dtype=np.int64)
    # scratch buffers, sized for the largest genome (allocating per genome would dominate)
    most_nodes, most_connections = 1, 1
    for g in range(n_genomes):
        most_nodes = max(most_nodes, node_ptr[g + 1] - node_ptr[g])
        most_connections = max(most_connections, connection_ptr[g + 1] - connection_ptr[g])
    source_buffer = np.empty(most_connections, dtype=np.int64)
    target_buffer = np.empty(most_connections, dtype=np.int64)
    weight_buffer = np.empty(most_connections)
    incoming_start = np.empty(most_nodes + 1, dtype=np.int64)
    incoming = np.empty(most_connections, dtype=np.int64)
    outgoing_start = np.empty(most_nodes + 1, dtype=np.int64)
    outgoing = np.empty(most_connections, dtype=np.int64)
    order = np.empty(most_nodes, dtype=np.int64)
    required = np.empty(most_nodes, dtype=np.bool_)
    stack = np.empty(most_nodes, dtype=np.int64)
    waiting = np.empty(most_nodes, dtype=np.int64)
    slot_of = np.empty(most_nodes, dtype=np.int64)
    k = 0  # nodes written
    c = 0  # connections written
    for g in range(n_genomes):
        n0, n1 = node_ptr[g], node_ptr[g + 1]
        n_nodes = n1 - n0
        ids = node_ids[n0:n1]
        # enabled connections as (source local index or input id < 0, target local index, weight)
        m = 0
        for e in range(connection_ptr[g], connection_ptr[g + 1]):
            if enabled[e]:
                m += 1
        source_local, target_local, weight = source_buffer[:m], target_buffer[:m], weight_buffer[:m]
        j = 0
        for e in range(connection_ptr[g], connection_ptr[g + 1]):
            if enabled[e]:
                s = sources[e]
                source_local[j] = np.searchsorted(ids, s) if s >= 0 else s
                target_local[j] = np.searchsorted(ids, targets[e])
                weight[j] = weights[e]
                j += 1
        _group(target_local, n_nodes, incoming_start, incoming)  # the connections into each node
        if feed_forward:  # keep the nodes that reach an output; order them topologically (Kahn)
            required[:n_nodes] = False
            top = 0
            for o in range(n_outputs):  # outputs have the smallest non-negative ids
                required[o] = True
                stack[top] = o
                top += 1
            while top > 0:
                top -= 1
                node = stack[top]
                for q in range(incoming_start[node], incoming_start[node + 1]):
                    s = source_local[incoming[q]]
                    if s >= 0 and not required[s]:
                        required[s] = True
                        stack[top] = s
                        top += 1
            waiting[:n_nodes] = 0
            for e in range(m):
                if required[target_local[e]] and source_local[e] >= 0:
                    waiting[target_local[e]] += 1
            _group(source_local, n_nodes, outgoing_start, outgoing)  # out of each node (inputs, < 0, left out)
            tail = 0
            for i in range(n_nodes):
                if required[i] and waiting[i] == 0:
                    order[tail] = i
                    tail += 1
            head = 0
            while head < tail:
                i = order[head]
                head += 1
                for q in range(outgoing_start[i], outgoing_start[i + 1]):
                    t = target_local[outgoing[q]]
                    if required[t]:
                        waiting[t] -= 1
                        if waiting[t] == 0:
                            order[tail] = t
                            tail += 1
            n_order = tail
        else:
            for i in range(n_nodes):
                order[i] = i
            n_order = n_nodes
        slot_of[:n_nodes] = -1
        for p in range(n_order):
            slot_of[order[p]] = n_inputs + p
        genome_nodes[g] = k
        for p in range(n_order):
            i = order[p]
            node_slot[k] = n_inputs + p
            node_bias[k] = biases[n0 + i]
            node_activation[k] = activations[n0 + i]
            for q in range(incoming_start[i], incoming_start[i + 1]):
                e = incoming[q]  # in innovation order, as the genome lists them
                s = source_local[e]
                if s < 0:
                    connection_source[c] = -s - 1
                elif slot_of[s] >= 0:
                    connection_source[c] = slot_of[s]
                else:  # a source that reaches no output (feed-forward): never computed
                    continue
                connection_weight[c] = weight[e]
                c += 1
            node_connections[k + 1] = c
            k += 1
        genome_nodes[g + 1] = k
        for o in range(n_outputs):
            output_slots[g, o] = slot_of[o]
        n_slots[g] = n_inputs + n_order
    return (
        genome_nodes,
        node_slot[:k],
        node_bias[:k],
        node_activation[:k],
        node_connections[: k + 1],
        connection_source[:c],
        connection_weight[:c],
        output_slots,
        n_slots,
    )


# ---- speciation: the first compatible representative, or a new species ----------------------------------------
@numba.njit(cache=True)
def assign_species(
    innovations,
    weights,
    connection_ptr,
    representative_innovations,
    representative_weights,
    representative_ptr,
    excess_coefficient,
    disjoint_coefficient,
    weight_coefficient,
    small_genome_size,
    threshold,
):
    """(species index per genome, founders): index r < n_representatives is an existing species; r >= it is
    the new species founded by genome ``founders[r - n_representatives]``, which represents it from then on."""
    n_genomes = len(connection_ptr) - 1
    n_representatives = len(representative_ptr) - 1
    assignment = np.empty(n_genomes, dtype=np.int64)
    founders = np.empty(n_genomes, dtype=np.int64)
    n_founders = 0
    for g in range(n_genomes):
        a0, a1 = connection_ptr[g], connection_ptr[g + 1]
        found = -1
        for r in range(n_representatives + n_founders):
            if r < n_representatives:
                b0, b1 = representative_ptr[r], representative_ptr[r + 1]
                other_innovations, other_weights = representative_innovations[b0:b1], representative_weights[b0:b1]
            else:
                f = founders[r - n_representatives]
                b0, b1 = connection_ptr[f], connection_ptr[f + 1]
                other_innovations, other_weights = innovations[b0:b1], weights[b0:b1]
            excess, disjoint, matching, weight_sum = gene_counts(
                innovations[a0:a1], weights[a0:a1], other_innovations, other_weights
            )
            larger = max(a1 - a0, b1 - b0)
            n = 1.0 if larger < small_genome_size else float(larger)
            distance = (excess_coefficient * excess + disjoint_coefficient * disjoint) / n
            if matching:
                distance += weight_coefficient * weight_sum / matching
            if distance < threshold:
                found = r
                break
        if found < 0:
            founders[n_founders] = g
            found = n_representatives + n_founders
            n_founders += 1
        assignment[g] = found
    return assignment, founders[:n_founders]


# ---- crossover of every child at once -----------------------------------------------------------------------
@numba.njit(cache=True)
def crossover_flat(
    node_ptr,
    node_ids,
    biases,
    activations,
    connection_ptr,
    innovations,
    sources,
    targets,
    weights,
    enabled,
    fitter,
    other,
    mix,
    uniforms,
    disable_inherited_rate,
):
    """Children of (fitter[i], other[i]): the fitter parent's genes; where ``mix[i]``, matching genes take
    the other parent's weight / bias with probability 1/2, and a gene disabled in either parent stays
    disabled with probability ``disable_inherited_rate`` (else enabled). ``uniforms``: random numbers in
    [0, 1), at least 2 per connection and 1 per node of the children."""
    n_children = len(fitter)
    child_node_ptr = np.zeros(n_children + 1, dtype=np.int64)
    child_connection_ptr = np.zeros(n_children + 1, dtype=np.int64)
    for i in range(n_children):
        f = fitter[i]
        child_node_ptr[i + 1] = child_node_ptr[i] + node_ptr[f + 1] - node_ptr[f]
        child_connection_ptr[i + 1] = child_connection_ptr[i] + connection_ptr[f + 1] - connection_ptr[f]
    n_nodes, n_connections = child_node_ptr[-1], child_connection_ptr[-1]
    out_node_ids = np.empty(n_nodes, dtype=np.int64)
    out_biases = np.empty(n_nodes)
    out_activations = np.empty(n_nodes, dtype=np.int8)
    out_innovations = np.empty(n_connections, dtype=np.int64)
    out_sources = np.empty(n_connections, dtype=np.int64)
    out_targets = np.empty(n_connections, dtype=np.int64)
    out_weights = np.empty(n_connections)
    out_enabled = np.empty(n_connections, dtype=np.bool_)
    u = 0
    for i in range(n_children):
        f, o = fitter[i], other[i]
        start = child_connection_ptr[i]
        for e in range(connection_ptr[f], connection_ptr[f + 1]):
            j = start + e - connection_ptr[f]
            out_innovations[j], out_sources[j], out_targets[j] = innovations[e], sources[e], targets[e]
            out_weights[j], out_enabled[j] = weights[e], enabled[e]
        start_node = child_node_ptr[i]
        for n in range(node_ptr[f], node_ptr[f + 1]):
            j = start_node + n - node_ptr[f]
            out_node_ids[j], out_biases[j], out_activations[j] = node_ids[n], biases[n], activations[n]
        if not mix[i]:
            continue
        a, b = connection_ptr[f], connection_ptr[o]  # walk both sorted histories; matching genes mix
        while a < connection_ptr[f + 1] and b < connection_ptr[o + 1]:
            if innovations[a] == innovations[b]:
                j = start + a - connection_ptr[f]
                if uniforms[u] < 0.5:
                    out_weights[j] = weights[b]
                u += 1
                if not enabled[a] or not enabled[b]:
                    out_enabled[j] = not (uniforms[u] < disable_inherited_rate)
                    u += 1
                else:
                    out_enabled[j] = True
                a += 1
                b += 1
            elif innovations[a] < innovations[b]:
                a += 1
            else:
                b += 1
        a, b = node_ptr[f], node_ptr[o]
        while a < node_ptr[f + 1] and b < node_ptr[o + 1]:
            if node_ids[a] == node_ids[b]:
                if uniforms[u] < 0.5:
                    j = start_node + a - node_ptr[f]
                    out_biases[j], out_activations[j] = biases[b], activations[b]
                u += 1
                a += 1
                b += 1
            elif node_ids[a] < node_ids[b]:
                a += 1
            else:
                b += 1
    return (
        child_node_ptr,
        child_connection_ptr,
        out_node_ids,
        out_biases,
        out_activations,
        out_innovations,
        out_sources,
        out_targets,
        out_weights,
        out_enabled,
    )


# ---- add-connection: pick an unconnected pair for every child that mutates so ----------------------------------
@numba.njit(cache=True)
def _reaches(start, goal, sources, targets):
    """True if ``goal`` is reachable from ``start`` along the given connections (all of them)."""
    m = len(sources)
    seen = np.zeros(m, dtype=np.bool_)  # per connection: already followed
    stack = np.empty(m + 1, dtype=np.int64)
    stack[0] = start
    top = 1
    while top > 0:
        top -= 1
        node = stack[top]
        if node == goal:
            return True
        for e in range(m):
            if not seen[e] and sources[e] == node:
                seen[e] = True
                stack[top] = targets[e]
                top += 1
    return False


@numba.njit(cache=True)
def choose_connections(
    children, node_ptr, node_ids, connection_ptr, sources, targets, n_inputs, feed_forward, tries, uniforms
):
    """For each child index, (source, target) of a new connection, or found False after ``tries`` draws.
    Sources are inputs or nodes, targets nodes; no duplicate pair; in feed-forward mode no cycle."""
    n = len(children)
    chosen_sources = np.zeros(n, dtype=np.int64)
    chosen_targets = np.zeros(n, dtype=np.int64)
    found = np.zeros(n, dtype=np.bool_)
    u = 0
    for i in range(n):
        g = children[i]
        n0, n1 = node_ptr[g], node_ptr[g + 1]
        c0, c1 = connection_ptr[g], connection_ptr[g + 1]
        n_nodes = n1 - n0
        for _ in range(tries):
            pick = int(uniforms[u] * (n_inputs + n_nodes))
            source = -(pick + 1) if pick < n_inputs else node_ids[n0 + pick - n_inputs]
            target = node_ids[n0 + int(uniforms[u + 1] * n_nodes)]
            u += 2
            duplicate = False
            for e in range(c0, c1):
                if sources[e] == source and targets[e] == target:
                    duplicate = True
                    break
            if duplicate:
                continue
            if feed_forward and (source == target or _reaches(target, source, sources[c0:c1], targets[c0:c1])):
                continue
            chosen_sources[i], chosen_targets[i], found[i] = source, target, True
            break
    return chosen_sources, chosen_targets, found


# ---- grow: append new nodes and connections at each child's end (new numbers are the largest) ---------------
@numba.njit(cache=True)
def _grow(
    node_ptr,
    node_ids,
    biases,
    activations,
    connection_ptr,
    innovations,
    sources,
    targets,
    weights,
    enabled,
    new_node,
    new_bias,
    new_activation,
    n_new_connections,
    new_innovation,
    new_source,
    new_target,
    new_weight,
):
    n_genomes = len(node_ptr) - 1
    out_node_ptr = np.zeros(n_genomes + 1, dtype=np.int64)
    out_connection_ptr = np.zeros(n_genomes + 1, dtype=np.int64)
    for g in range(n_genomes):
        out_node_ptr[g + 1] = out_node_ptr[g] + node_ptr[g + 1] - node_ptr[g] + (1 if new_node[g] >= 0 else 0)
        out_connection_ptr[g + 1] = (
            out_connection_ptr[g] + connection_ptr[g + 1] - connection_ptr[g] + n_new_connections[g]
        )
    out_ids = np.empty(out_node_ptr[-1], dtype=np.int64)
    out_biases = np.empty(out_node_ptr[-1])
    out_activations = np.empty(out_node_ptr[-1], dtype=np.int8)
    out_innovations = np.empty(out_connection_ptr[-1], dtype=np.int64)
    out_sources = np.empty(out_connection_ptr[-1], dtype=np.int64)
    out_targets = np.empty(out_connection_ptr[-1], dtype=np.int64)
    out_weights = np.empty(out_connection_ptr[-1])
    out_enabled = np.empty(out_connection_ptr[-1], dtype=np.bool_)
    for g in range(n_genomes):
        j = out_node_ptr[g]
        for n in range(node_ptr[g], node_ptr[g + 1]):
            out_ids[j], out_biases[j], out_activations[j] = node_ids[n], biases[n], activations[n]
            j += 1
        if new_node[g] >= 0:
            out_ids[j], out_biases[j], out_activations[j] = new_node[g], new_bias[g], new_activation[g]
        j = out_connection_ptr[g]
        for e in range(connection_ptr[g], connection_ptr[g + 1]):
            out_innovations[j], out_sources[j], out_targets[j] = innovations[e], sources[e], targets[e]
            out_weights[j], out_enabled[j] = weights[e], enabled[e]
            j += 1
        for q in range(n_new_connections[g]):
            out_innovations[j], out_sources[j], out_targets[j] = (
                new_innovation[g, q],
                new_source[g, q],
                new_target[g, q],
            )
            out_weights[j], out_enabled[j] = new_weight[g, q], True
            j += 1
    return (
        out_node_ptr,
        out_connection_ptr,
        out_ids,
        out_biases,
        out_activations,
        out_innovations,
        out_sources,
        out_targets,
        out_weights,
        out_enabled,
    )


def grow(
    flat: Flat,
    new_nodes: dict[int, tuple[int, float, int]],
    new_connections: dict[int, list[tuple[int, int, int, float]]],
) -> Flat:
    """A new Flat with, per child g, node ``new_nodes[g] = (id, bias, activation)`` and connections
    ``new_connections[g] = [(innovation, source, target, weight), ...]`` (at most 2) appended. New ids and
    innovations exceed every id / innovation the children inherited, so appending keeps the genes sorted."""
    n = flat.n_genomes
    new_node, new_bias, new_activation = np.full(n, -1, dtype=np.int64), np.zeros(n), np.zeros(n, dtype=np.int8)
    for g, (node, bias, activation) in new_nodes.items():
        new_node[g], new_bias[g], new_activation[g] = node, bias, activation
    count = np.zeros(n, dtype=np.int64)
    innovation, source, target = (np.zeros((n, 2), dtype=np.int64) for _ in range(3))
    weight = np.zeros((n, 2))
    for g, genes in new_connections.items():
        count[g] = len(genes)
        for q, gene in enumerate(genes):
            innovation[g, q], source[g, q], target[g, q], weight[g, q] = gene
    return Flat(
        *_grow(
            flat.node_ptr,
            flat.node_ids,
            flat.biases,
            flat.activations,
            flat.connection_ptr,
            flat.innovations,
            flat.sources,
            flat.targets,
            flat.weights,
            flat.enabled,
            new_node,
            new_bias,
            new_activation,
            count,
            innovation,
            source,
            target,
            weight,
        )
    )
