"""Speciation: genomes grouped by compatibility distance to each species' representative.

"Each existing species is represented by a random genome inside the species from the previous
generation. A given genome g in the current generation is placed in the first species in which g is
compatible with the representative genome of that species. If g is not compatible with any existing
species, a new species is created with g as its representative" (paper, Section 3.3). With
``target_species > 0`` the threshold delta_t moves by ``threshold_step`` each generation toward that
number of species (the adaptive threshold of the NEAT users' page and later NEAT code).

Paper: Stanley & Miikkulainen 2002, Section 3.3.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from evosparse.neat import batch
from evosparse.neat.config import NeatConfig
from evosparse.neat.genome import Genome


@dataclass
class Species:
    """One species: its representative, this generation's members and its stagnation record."""

    key: int
    created: int
    representative: Genome
    members: list[int] = field(default_factory=list)
    best_fitness: float = -np.inf  # the best fitness any member ever reached
    last_improved: int = 0  # the generation best_fitness last went up

    def fitnesses(self, genomes: dict[int, Genome]) -> np.ndarray:
        return np.array([genomes[key].fitness for key in self.members], dtype=np.float64)


@dataclass
class SpeciesSet:
    """All species of the population and the current compatibility threshold."""

    threshold: float
    species: dict[int, Species] = field(default_factory=dict)
    next_key: int = 1

    def speciate(
        self,
        genomes: dict[int, Genome],
        generation: int,
        config: NeatConfig,
        rng: np.random.Generator,
        *,
        flat: batch.Flat | None = None,
    ) -> None:
        """Place every genome in the first compatible species (in order of creation), or found a new one.

        The distances are ``distance.compatibility_distance``, computed for all genomes in one compiled call.
        """
        keys = list(genomes)
        flat = flat if flat is not None else batch.flatten([genomes[key] for key in keys])
        existing = list(self.species.values())
        representatives = batch.flatten([species.representative for species in existing])
        assignment, founders = batch.assign_species(
            flat.innovations,
            flat.weights,
            flat.connection_ptr,
            representatives.innovations,
            representatives.weights,
            representatives.connection_ptr,
            config.excess_coefficient,
            config.disjoint_coefficient,
            config.weight_coefficient,
            config.small_genome_size,
            self.threshold,
        )
        for species in existing:
            species.members = []
        for founder in founders.tolist():
            key = keys[founder]
            new = Species(key=self.next_key, created=generation, representative=genomes[key], last_improved=generation)
            existing.append(new)
            self.species[new.key] = new
            self.next_key += 1
        for key, index in zip(keys, assignment.tolist()):
            existing[index].members.append(key)
        self.species = {key: s for key, s in self.species.items() if s.members}
        for species in self.species.values():  # next generation's representatives: a random member of each
            species.representative = genomes[species.members[rng.integers(len(species.members))]]
        if config.target_species:
            self._adapt_threshold(config)

    def _adapt_threshold(self, config: NeatConfig) -> None:
        if len(self.species) < config.target_species:
            self.threshold = max(config.threshold_min, self.threshold - config.threshold_step)
        elif len(self.species) > config.target_species:
            self.threshold += config.threshold_step

    def species_of(self, genome_key: int) -> int | None:
        for species in self.species.values():
            if genome_key in species.members:
                return species.key
        return None
