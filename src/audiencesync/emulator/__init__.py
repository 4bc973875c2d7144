"""A local Graph API emulator for Custom Audiences and the Conversions API (like moto for AWS).

Layout, as moto's services:

* ``app``       — routes, request parsing and response shaping (the only HTTP code);
* ``model``     — ad accounts, audiences and upload sessions with their rules;
  ``members`` (membership set algebra), ``payload`` (schema/row validation) and
  ``matching`` (the simulated user base: which members match) serve it;
* ``capi``      — datasets and Conversions API events;
* ``errors``    — ``GraphError`` and Facebook's error envelope;
* ``auth``, ``versions``, ``ratelimit``, ``faults``, ``reqlog``, ``clock``,
  ``persistence``, ``config``, ``server`` — one concern each.

See docs/emulator.md.
"""

from .app import create_app
from .config import EmulatorConfig
from .server import EmulatorServer, serve

__all__ = ["EmulatorConfig", "EmulatorServer", "create_app", "serve"]
