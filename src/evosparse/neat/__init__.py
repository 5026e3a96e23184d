"""NEAT, NeuroEvolution of Augmenting Topologies (Stanley & Miikkulainen 2002), with neat-python's API:

    from evosparse.neat import NeatConfig, Population
    from evosparse.neat.tasks import make_task, preset

    task = make_task("xor")
    population = Population(preset("xor"), seed=0)
    winner = population.run(task, 300, solved=task.solution)

Genomes are arrays; a generation's phenotypes are compiled into one batch and evaluated by numba.
Checkpoints and winner files are data only (JSON + ``.npz``); ``run_neat`` is a whole run in a run folder.
"""

from evosparse.neat.checkpoint import Checkpointer, load_checkpoint, load_winner, save_checkpoint, save_winner
from evosparse.neat.config import NeatConfig
from evosparse.neat.crossover import crossover
from evosparse.neat.distance import compatibility_distance
from evosparse.neat.genome import Genome
from evosparse.neat.ini import config_from_ini
from evosparse.neat.innovation import InnovationTracker
from evosparse.neat.mutation import mutate
from evosparse.neat.parallel import ParallelEvaluator, RayEvaluator
from evosparse.neat.phenotype import FeedForwardNetwork, Networks, RecurrentNetwork
from evosparse.neat.population import Population
from evosparse.neat.reporting import ConsoleReporter, CsvReporter, GenerationStats, Reporter
from evosparse.neat.run import NeatRunResult, run_neat

__all__ = [
    "Checkpointer",
    "ConsoleReporter",
    "CsvReporter",
    "FeedForwardNetwork",
    "GenerationStats",
    "Genome",
    "InnovationTracker",
    "NeatConfig",
    "NeatRunResult",
    "Networks",
    "ParallelEvaluator",
    "Population",
    "RayEvaluator",
    "RecurrentNetwork",
    "Reporter",
    "compatibility_distance",
    "config_from_ini",
    "crossover",
    "load_checkpoint",
    "load_winner",
    "mutate",
    "run_neat",
    "save_checkpoint",
    "save_winner",
]
