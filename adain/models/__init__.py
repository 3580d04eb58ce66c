"""The networks, one subpackage each (``adain``: the paper's; ``microast``: the real-time one),
behind one interface (adain.models.interface); shared pure functions in ``ops``, the training losses in ``losses``."""

from __future__ import annotations

import importlib
import os
from collections.abc import Hashable
from types import ModuleType

from adain.errors import AdainError

NETWORKS = ("adain", "microast")  # --model's choices: packages adain.models.NAME


def network(name: str) -> ModuleType:
  """A registered network's package (see adain.models.interface for what it provides)."""
  if name not in NETWORKS:
    raise AdainError(None, f"unknown model {name!r}: one of {', '.join(NETWORKS)}")
  return importlib.import_module(f"adain.models.{name}")


def load_code(path: str | os.PathLike, model: str):
  """A style code file of network ``model``: another network's is refused in one line naming
  the file and the flag that takes it."""
  try:
    return network(model).code_type().load(path)
  except AdainError:
    for other in NETWORKS:
      if other != model:
        try:
          network(other).code_type().load(path)
        except AdainError:
          continue
        raise AdainError(path, f"is a style code of the {other} model, not of {model}: "
                         f"use it with --model {other}") from None
    raise


def read_weights(model: str, vgg=None, decoder=None, weights=None, *, encoder_only: bool = False,
                 download: bool = True, progress: bool = True) -> tuple[Hashable, dict]:
  """A network's spec and arrays by name from its weight files, as every command finds them:
  AdaIN's ``vgg`` and ``decoder`` (``encoder_only``: vgg alone, for style codes), MicroAST's
  ``weights`` folder (its four files; all four, since its style code needs three of them)."""
  if model == "microast":
    if vgg is not None or decoder is not None:
      raise AdainError(vgg or decoder, "is for the adain model: MicroAST's weights are a folder "
                       "(--weights DIR)")
    from adain.models.microast import Spec
    from adain.models.microast import weights as microast_weights

    return Spec(), microast_weights.model_arrays(microast_weights.state_dicts(
        weights, download=download, progress=progress))
  network(model)  # an unknown name is one line
  if weights is not None:
    raise AdainError(weights, "is a MicroAST weights folder: the adain model takes --vgg and --decoder")
  from adain.models.adain.weights import model_arrays, resolve_weights, state_dicts

  if encoder_only:
    return model_arrays(resolve_weights("vgg", vgg, download=download, progress=progress))
  return model_arrays(*state_dicts(vgg, decoder, download=download, progress=progress))


def __getattr__(name: str):
  """``adain.models.AdaIN``, the paper's Flax module, as before the networks had packages."""
  if name == "AdaIN":
    return importlib.import_module("adain.models.adain.network").AdaIN
  raise AttributeError(f"module 'adain.models' has no attribute {name!r}")
