"""The ``evosparse`` command line: ``train``, ``info``, ``bench``."""

from evosparse.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
