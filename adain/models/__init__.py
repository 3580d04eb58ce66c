"""The networks, one subpackage each (``adain``: the paper's; ``microast``: the real-time one),
behind one interface (adain.models.interface); shared pure functions in ``ops``, the training losses in ``losses``."""

from __future__ import annotations

import importlib
from types import ModuleType

NETWORKS = ("adain", "microast")  # --model's choices: packages adain.models.NAME


def network(name: str) -> ModuleType:
  """A registered network's package (see adain.models.interface for what it provides)."""
  if name not in NETWORKS:
    from adain.errors import AdainError

    raise AdainError(None, f"unknown model {name!r}: one of {', '.join(NETWORKS)}")
  return importlib.import_module(f"adain.models.{name}")


def __getattr__(name: str):
  """``adain.models.AdaIN``, the paper's Flax module, as before the networks had packages."""
  if name == "AdaIN":
    return importlib.import_module("adain.models.adain.network").AdaIN
  raise AttributeError(f"module 'adain.models' has no attribute {name!r}")
