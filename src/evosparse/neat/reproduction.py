"""One generation of reproduction: stagnation, explicit fitness sharing, elitism, selection, breeding.

1. Stagnation: a species whose best fitness has not improved for ``max_stagnation`` generations gets no
   offspring, unless it is among the ``species_elitism`` best (if every species is stagnant, the best one
   breeds). If the whole population has not improved for ``population_stagnation`` generations, only the
   two best species breed and their stagnation counts restart (paper, Section 3.3: "in rare cases when
   the fitness of the entire population does not improve for more than 20 generations, only the top two
   species are allowed to reproduce"; the rule fires at exactly ``population_stagnation`` generations, as
   in the original code; off by default, on in the DPNV preset).
2. Explicit fitness sharing: each genome's fitness is divided by its species' size, so a species'
   share of the next generation is proportional to its mean fitness (paper, Section 3.3, eq. 2).
3. Elitism: the champion of every species with at least ``elitism_min_species_size`` members is copied
   unchanged (paper: more than five).
4. Selection: parents are drawn uniformly from the best ``survival_threshold`` fraction of the species.
5. Breeding: a fraction ``crossover_rate`` of offspring come from crossover (rarely with another
   species' champion), the rest are copies; every non-elite child is then mutated (``mutation.mutate``:
   at most one structural mutation, else weights, biases, enabled flags, activations).

Paper: Stanley & Miikkulainen 2002, Sections 3.3 and 4.1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evosparse.neat import batch
from evosparse.neat.config import ACTIVATIONS, NeatConfig
from evosparse.neat.genome import Genome
from evosparse.neat.innovation import InnovationTracker
from evosparse.neat.mutation import perturb
from evosparse.neat.species import Species, SpeciesSet


@dataclass
class PopulationRecord:
    """Population-level stagnation: the best fitness ever and when it last improved."""

    best_fitness: float = -np.inf
    last_improved: int = 0


def breeding_species(
    species: list[Species], best: np.ndarray, generation: int, config: NeatConfig, record: PopulationRecord
) -> np.ndarray:
    """Indices into ``species`` of those allowed to breed (step 1), best first; ``best``: each species'
    best fitness this generation. Updates the species' and the population's stagnation records."""
    for one, fitness in zip(species, best.tolist()):
        if fitness > one.best_fitness:
            one.best_fitness, one.last_improved = fitness, generation
    ranked = np.lexsort((np.array([one.key for one in species]), -best))
    if best.max() > record.best_fitness:
        record.best_fitness, record.last_improved = float(best.max()), generation
    if config.population_stagnation and generation - record.last_improved >= config.population_stagnation:
        # refocus: only the two best species breed, and they get a fresh max_stagnation generations to improve
        # (otherwise, with species_elitism = 0, both would be removed as stagnant in the next generation)
        record.last_improved = generation
        for i in ranked[:2].tolist():
            species[i].last_improved = generation
        return ranked[:2]
    young = np.array([generation - species[i].last_improved < config.max_stagnation for i in ranked])
    young[: config.species_elitism] = True  # the best species never die of stagnation
    if not young.any():  # every species stagnant (possible with species_elitism = 0): the best one breeds
        young[0] = True
    return ranked[young]


def offspring_counts(mean_fitnesses: np.ndarray, population_size: int) -> np.ndarray:
    """Split ``population_size`` in proportion to the species' mean (= summed shared) fitness (step 2).

    Fitnesses are shifted so the lowest is 0 when any is negative; largest remainders round the shares.
    """
    shares = mean_fitnesses - min(0.0, float(mean_fitnesses.min()))
    total = shares.sum()
    exact = (shares / total if total > 0 else np.full(len(shares), 1 / len(shares))) * population_size
    counts = np.floor(exact).astype(np.int64)
    remainder_order = np.argsort(-(exact - counts), kind="stable")
    counts[remainder_order[: population_size - counts.sum()]] += 1
    return counts


def reproduce(
    genomes: dict[int, Genome],
    species_set: SpeciesSet,
    generation: int,
    config: NeatConfig,
    tracker: InnovationTracker,
    rng: np.random.Generator,
    record: PopulationRecord,
    next_key: int,
    *,
    flat: batch.Flat | None = None,
) -> tuple[dict[int, Genome], int, batch.Flat]:
    """The next generation's genomes (not yet speciated), the next free genome key and the children's
    genes as one ``batch.Flat`` (``flat``: the same for ``genomes``, if the caller has it).

    Who is whose child is decided for all species at once with array operations; the genes of all
    children are then made by the kernels of ``batch.py``.
    """
    tracker.new_generation()
    keys = list(genomes)
    position = {key: i for i, key in enumerate(keys)}
    fitness = np.array([genomes[key].fitness for key in keys], dtype=np.float64)
    species = list(species_set.species.values())
    label = np.empty(len(keys), dtype=np.int64)
    for index, one in enumerate(species):
        label[[position[key] for key in one.members]] = index
    # every species a block of ``ranked``, best first, ties broken by genome key (reproducibility)
    ranked = np.lexsort((np.array(keys), -fitness, label))
    start = np.searchsorted(label[ranked], np.arange(len(species) + 1))
    size = np.diff(start)
    breeders = breeding_species(species, fitness[ranked[start[:-1]]], generation, config, record)
    means = np.add.reduceat(fitness[ranked], start[:-1])[breeders] / size[breeders]
    counts = offspring_counts(means, config.population_size)
    size, start = size[breeders], start[:-1][breeders]

    # step 3: champions copied unchanged (keeping their key)
    n_elite = np.where(size >= config.elitism_min_species_size, np.minimum(np.minimum(config.elitism, counts), size), 0)
    elites = np.concatenate([ranked[a : a + n] for a, n in zip(start.tolist(), n_elite.tolist())] + [[]])
    elites = elites.astype(np.int64)
    # steps 4 and 5: parents from the best survival_threshold of the species; crossover or copy
    n_parents = np.maximum(1, np.ceil(config.survival_threshold * size)).astype(np.int64)
    of_species = np.repeat(np.arange(len(breeders)), counts - n_elite)
    n = len(of_species)
    draws = rng.random((n, 4))
    mothers = ranked[start[of_species] + (draws[:, 0] * n_parents[of_species]).astype(np.int64)]
    fathers = ranked[start[of_species] + (draws[:, 1] * n_parents[of_species]).astype(np.int64)]
    mix = draws[:, 2] < config.crossover_rate
    across = np.flatnonzero(mix & (draws[:, 3] < config.interspecies_mating_rate)) if len(breeders) > 1 else []
    for child in across:  # the other parent: the champion of another breeding species
        other_species = rng.integers(len(breeders) - 1)
        other_species += other_species >= of_species[child]
        fathers[child] = ranked[start[other_species]]
    fathers = np.where(mix, fathers, mothers)

    flat = flat if flat is not None else batch.flatten([genomes[key] for key in keys])
    mothers, fathers = np.concatenate([elites, mothers]), np.concatenate([elites, fathers])
    mix = np.concatenate([np.zeros(len(elites), dtype=np.bool_), mix])
    sizes = flat.n_connections
    # the fitter parent gives the structure; ties go to the smaller genome (as crossover.fitter_first)
    mother_first = (fitness[mothers] > fitness[fathers]) | (
        (fitness[mothers] == fitness[fathers]) & (sizes[mothers] <= sizes[fathers])
    )
    fitter = np.where(mother_first, mothers, fathers)
    other = np.where(mother_first, fathers, mothers)
    n_uniforms = int(2 * sizes[fitter].sum() + np.diff(flat.node_ptr)[fitter].sum())
    children = batch.Flat(
        *batch.crossover_flat(
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
            fitter,
            other,
            mix,
            rng.random(n_uniforms),
            config.disable_inherited_rate,
        )
    )
    is_elite = np.arange(len(fitter)) < len(elites)
    children = mutate_all(children, is_elite, config, tracker, rng)
    child_keys = [keys[i] for i in elites.tolist()] + list(range(next_key, next_key + n))
    return dict(zip(child_keys, batch.unflatten(children, child_keys))), next_key + n, children


def mutate_all(
    flat: batch.Flat, elite: np.ndarray, config: NeatConfig, tracker: InnovationTracker, rng: np.random.Generator
) -> batch.Flat:
    """``mutation.mutate`` applied to every non-elite genome of ``flat`` (changes ``flat``; returns the result)."""
    n_children = flat.n_genomes
    draws = rng.random((n_children, 6))
    free = ~elite
    add_node = free & (draws[:, 0] < config.add_node_rate)
    add_connection = free & ~add_node & (draws[:, 1] < config.add_connection_rate)
    plain = free & ~add_node & ~add_connection
    n_connections, n_nodes = flat.n_connections, np.diff(flat.node_ptr)
    change = np.repeat(plain & (draws[:, 2] < config.weight_mutate_rate), n_connections)
    flat.weights[change] = perturb(flat.weights[change], config, rng)
    change = np.repeat(plain & (draws[:, 3] < config.bias_mutate_rate), n_nodes)
    flat.biases[change] = perturb(flat.biases[change], config, rng)
    toggled = plain & (draws[:, 4] < config.enable_toggle_rate) & (n_connections > 0)
    genes = flat.connection_ptr[:-1][toggled] + (draws[toggled, 5] * n_connections[toggled]).astype(np.int64)
    flat.enabled[genes] = ~flat.enabled[genes]
    if config.activation_mutate_rate:
        change = np.repeat(plain, n_nodes) & (rng.random(len(flat.node_ids)) < config.activation_mutate_rate)
        options = np.array([ACTIVATIONS.index(name) for name in config.activation_options], dtype=np.int8)
        flat.activations[change] = rng.choice(options, int(change.sum()))

    new_nodes: dict[int, tuple[int, float, int]] = {}
    new_connections: dict[int, list[tuple[int, int, int, float]]] = {}
    # add node: split the k-th enabled connection, k uniform (found through the running count of enabled genes)
    count = np.concatenate([[0], np.cumsum(flat.enabled)])
    before = count[flat.connection_ptr[:-1]]
    n_enabled = count[flat.connection_ptr[1:]] - before
    splitting = np.flatnonzero(add_node & (n_enabled > 0))
    picks = (rng.random(len(splitting)) * n_enabled[splitting]).astype(np.int64)
    genes = np.searchsorted(count, before[splitting] + picks + 1) - 1
    activation = ACTIVATIONS.index(config.activation)
    for g, gene in zip(splitting.tolist(), genes.tolist()):
        # A child has only last generation's genes, so this generation's shared node id is new to it.
        node, innovation_in, innovation_out = tracker.split(int(flat.innovations[gene]))
        flat.enabled[gene] = False
        source, target, weight = int(flat.sources[gene]), int(flat.targets[gene]), float(flat.weights[gene])
        new_nodes[g] = (node, 0.0, activation)
        new_connections[g] = [(innovation_in, source, node, 1.0), (innovation_out, node, target, weight)]
    chosen = np.flatnonzero(add_connection)
    if len(chosen):
        uniforms = rng.random(2 * config.add_connection_tries * len(chosen))
        sources, targets, found = batch.choose_connections(
            chosen,
            flat.node_ptr,
            flat.node_ids,
            flat.connection_ptr,
            flat.sources,
            flat.targets,
            config.n_inputs,
            config.feed_forward,
            config.add_connection_tries,
            uniforms,
        )
        weights = rng.normal(0.0, config.weight_init_stdev, len(chosen)).clip(-config.weight_max, config.weight_max)
        for g, source, target, ok, weight in zip(
            chosen.tolist(), sources.tolist(), targets.tolist(), found.tolist(), weights.tolist()
        ):
            if ok:
                new_connections[g] = [(tracker.connection(source, target), source, target, weight)]
    return batch.grow(flat, new_nodes, new_connections) if new_connections else flat
