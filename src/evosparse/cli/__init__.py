"""The ``evosparse`` command line: ``train``, ``info``, ``bench``, ``compare``, ``plot``, ``neat``, ``grid``.

:mod:`evosparse.cli.main` builds the parser and dispatches; :mod:`evosparse.cli._flags` holds what every
command shares (config flags, the parser class, the one error path).
"""

from evosparse.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
