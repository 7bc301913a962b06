"""Portico: a plugin-based headless self-service portal engine."""

import pluggy

__version__ = "0.1.0"

#: Decorate plugin functions with this to implement a hook in ``engine.hookspecs``.
hookimpl = pluggy.HookimplMarker("portico")
