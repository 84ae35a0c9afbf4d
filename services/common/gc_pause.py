"""Bulk computations without the cyclic garbage collector's pauses.

A run that builds hundreds of thousands of small objects triggers a full collection again and again, each
walking every live object (a 50,000-firm evaluation spent a third of its time there). While any bulk
section is running the collector is off; it is switched back on, and run once, when the last one ends.
Reference counting still frees everything acyclic meanwhile."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

Params = ParamSpec("Params")
Result = TypeVar("Result")


class CollectorPause:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self._was_enabled = True

    def __enter__(self) -> CollectorPause:
        with self._lock:
            if self._active == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._active += 1
        return self

    def __exit__(self, *_exc) -> None:
        with self._lock:
            self._active -= 1
            if self._active == 0 and self._was_enabled:
                gc.enable()
                gc.collect(1)  # what the pause left in the young generations; the old one at its own pace

    def run(self, function: Callable[Params, Result], *args: Params.args, **kwargs: Params.kwargs) -> Result:
        with self:
            return function(*args, **kwargs)
