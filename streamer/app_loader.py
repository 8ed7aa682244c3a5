"""Finds the topology named by ``module:attr`` on the command line."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from streamer.dsl.builder import StreamsBuilder
from streamer.errors import AppLoadError, StreamerError
from streamer.topology.topology import Topology


def load_topology(spec: str) -> Topology:
    """``module:attr`` where attr is a Topology, a StreamsBuilder, or a zero-argument function returning either."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise AppLoadError(f"{spec!r} is not of the form module:attr (for example apps.clickstream:topology)")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise AppLoadError(
            f"cannot import module {module_name!r} ({error}); run from the directory that contains it "
            "or add it to PYTHONPATH"
        ) from None
    except StreamerError:
        raise
    except Exception as error:
        raise AppLoadError(f"importing {module_name!r} raised {error!r}") from error
    try:
        target: Any = getattr(module, attr)
    except AttributeError:
        raise AppLoadError(
            f"module {module_name!r} has no attribute {attr!r}; candidates there: "
            f"{', '.join(_candidates(module)) or 'none'}"
        ) from None
    return _as_topology(target, spec)


def _candidates(module: Any) -> list[str]:
    """Names in the module that could be what the user meant: topologies, builders, its own functions."""
    names = []
    for name, value in vars(module).items():
        own_function = callable(value) and getattr(value, "__module__", None) == module.__name__
        if not name.startswith("_") and (isinstance(value, (Topology, StreamsBuilder)) or own_function):
            names.append(name)
    return sorted(names)


def _as_topology(target: Any, spec: str, called: bool = False) -> Topology:
    if isinstance(target, Topology):
        return target
    if isinstance(target, StreamsBuilder):
        return target.build()
    if callable(target) and not called:
        try:
            result = target()
        except StreamerError:
            raise
        except TypeError as error:
            raise AppLoadError(f"{spec} must take no arguments to be called: {error}") from None
        return _as_topology(result, spec, called=True)
    raise AppLoadError(
        f"{spec} is a {type(target).__name__}, not a Topology, a StreamsBuilder or a function returning one"
    )
