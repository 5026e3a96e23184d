"""Callbacks of the RL agents, shaped like Stable-Baselines3's (``stable_baselines3.common.callbacks``).

The agent's ``learn`` calls the public hooks; they keep the counters and call the private template
methods subclasses override:

* ``on_training_start()`` once per ``learn`` call, before the first environment step,
* ``on_step()`` after every (vector) environment step; ``_on_step`` returning False stops ``learn``,
* ``on_rollout_end()`` before each update phase (every ``train_freq`` steps, once updates have begun),
* ``on_training_end()`` when ``learn`` returns.

Inside the hooks, ``self.model`` is the agent, ``self.num_timesteps`` its environment step count (all
environments together) and ``self.locals`` the latest step: ``obs``, ``actions``, ``rewards``,
``terminated``, ``truncated``, ``dones``, ``infos``, ``new_obs`` (numpy arrays with a leading
environment axis; ``infos`` a list of dicts, one per environment).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evosparse.rl.base import BaseAlgorithm


class BaseCallback:
    """Base class: override the ``_on_...`` template methods, not the public hooks."""

    def __init__(self, verbose: int = 0) -> None:
        self.verbose = verbose
        self.model: BaseAlgorithm | None = None
        self.n_calls = 0  # on_step calls seen by this callback
        self.num_timesteps = 0
        self.locals: dict[str, Any] = {}

    # ---- public hooks, called by the agent ------------------------------------------------------------
    def init_callback(self, model: BaseAlgorithm) -> None:
        self.model = model
        self._init_callback()

    def on_training_start(self) -> None:
        self.num_timesteps = self.model.num_timesteps
        self._on_training_start()

    def on_step(self) -> bool:
        self.n_calls += 1
        self.num_timesteps = self.model.num_timesteps
        return self._on_step() is not False

    def on_rollout_end(self) -> None:
        self._on_rollout_end()

    def on_training_end(self) -> None:
        self._on_training_end()

    def update_locals(self, locals_: dict[str, Any]) -> None:
        self.locals.update(locals_)
        self._update_locals(locals_)

    # ---- template methods -----------------------------------------------------------------------------
    def _init_callback(self) -> None:
        pass

    def _on_training_start(self) -> None:
        pass

    def _on_step(self) -> bool | None:
        return True

    def _on_rollout_end(self) -> None:
        pass

    def _on_training_end(self) -> None:
        pass

    def _update_locals(self, locals_: dict[str, Any]) -> None:
        pass


class CallbackList(BaseCallback):
    """Several callbacks in order; every one sees every hook and ``learn`` stops if any asks to."""

    def __init__(self, callbacks: Iterable[BaseCallback]) -> None:
        super().__init__()
        self.callbacks = list(callbacks)

    def _init_callback(self) -> None:
        for callback in self.callbacks:
            callback.init_callback(self.model)

    def _on_training_start(self) -> None:
        for callback in self.callbacks:
            callback.on_training_start()

    def _on_step(self) -> bool:
        keep_going = True
        for callback in self.callbacks:
            keep_going = callback.on_step() and keep_going
        return keep_going

    def _on_rollout_end(self) -> None:
        for callback in self.callbacks:
            callback.on_rollout_end()

    def _on_training_end(self) -> None:
        for callback in self.callbacks:
            callback.on_training_end()

    def _update_locals(self, locals_: dict[str, Any]) -> None:
        for callback in self.callbacks:
            callback.update_locals(locals_)


class ConvertCallback(BaseCallback):
    """A plain function ``f(locals, model) -> bool`` as a callback (SB3's ``ConvertCallback``)."""

    def __init__(self, function: Callable[[dict[str, Any], Any], bool | None]) -> None:
        super().__init__()
        self.function = function

    def _on_step(self) -> bool | None:
        return self.function(self.locals, self.model)


def as_callback(callback: BaseCallback | Iterable[BaseCallback] | Callable | None) -> BaseCallback:
    """None, a callback, a list of callbacks or a function -> one callback."""
    if callback is None:
        return BaseCallback()
    if isinstance(callback, BaseCallback):
        return callback
    if isinstance(callback, list | tuple):
        return CallbackList([as_callback(c) for c in callback])
    if callable(callback):
        return ConvertCallback(callback)
    raise TypeError(f"callback must be a BaseCallback, a list of them, a function or None, got {callback!r}")
