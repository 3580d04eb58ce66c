"""The paper's weights: its state dicts (PyTorch naming, OIHW arrays), checked, to and from the
model's arrays by name; where its published files live.

Every format (adain.weights: .pth in both torch.save layouts, Lua Torch .t7, our native .npz)
first becomes a plain ``{"29.weight": ndarray, ...}`` dict keyed like pytorch-AdaIN's
nn.Sequential; this module checks names and shapes against the architecture and fills the model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from adain import hub
from adain.errors import AdainError, WeightsError
from adain.hub.download import Source
from adain.models.adain.architecture import ENCODER_LAYERS, VGG_UNUSED_LAYERS, Variant, decoder_layers
from adain.weights import StateDict, native_path, read_native, read_state_dict, write_native

if TYPE_CHECKING:
  from adain.models.adain.network import AdaIN


def _expected_shapes(layers) -> dict[str, tuple[int, ...]]:
  shapes = {}
  for idx, cin, cout, k in layers:
    shapes[f"{idx}.weight"] = (cout, cin, k, k)
    shapes[f"{idx}.bias"] = (cout,)
  return shapes


VGG_SHAPES = _expected_shapes([(l.torch_index, l.cin, l.cout, l.ksize) for l in ENCODER_LAYERS])
VGG_OPTIONAL_SHAPES = _expected_shapes([(i, cin, cout, 3) for i, cin, cout in VGG_UNUSED_LAYERS])
# A decoder norm layer's arrays, named after the conv it follows (see _norm_key).
NORM_ARRAYS = {"batch": ("weight", "bias", "running_mean", "running_var"),
               "instance": ("weight", "bias")}


def _norm_key(layer, name: str) -> str:
  """The state dict key of array ``name`` of the norm after decoder ``layer``: norm{index}.{name}."""
  return f"norm{layer.torch_index}.{name}"


def decoder_shapes(variant: Variant = Variant()) -> dict[str, tuple[int, ...]]:
  layers = decoder_layers(variant)
  shapes = _expected_shapes([(l.torch_index, l.cin, l.cout, 3) for l in layers])
  for l in layers[:-1]:
    for name in NORM_ARRAYS.get(variant.decoder_norm, ()):
      shapes[_norm_key(l, name)] = (l.cout,)
  return shapes


DECODER_SHAPES = decoder_shapes()


def variant_of(sd: StateDict) -> Variant:
  """The decoder variant a state dict's names and shapes are of (checked in full later)."""
  layer = decoder_layers()[0]
  first = sd.get(f"{layer.torch_index}.weight")
  concat = first is not None and first.ndim == 4 and first.shape[1] == 2 * layer.cin
  norm = ("batch" if any(k.endswith(".running_mean") for k in sd) else
          "instance" if any(k.startswith("norm") for k in sd) else "none")
  return Variant("concat" if concat else "adain", norm)


def variant_meta(variant: Variant) -> dict[str, str]:
  """How a native decoder file records its variant (see load_native)."""
  return {"fusion": variant.fusion, "decoder_norm": variant.decoder_norm}


def check_state_dict(sd: StateDict, kind: str, path: str | os.PathLike | None = None,
                     variant: Variant | None = None) -> StateDict:
  """Returns the arrays the model uses (float32), or raises WeightsError naming what is wrong.

  ``kind`` is "vgg" or "decoder". A vgg file may hold the layers past relu4_1 too, as the
  published vgg_normalised does; they must have VGG-19's shapes and are dropped. A decoder is
  checked against ``variant``, by default the one its names and shapes suggest.
  """
  if kind != "vgg":
    variant = variant or variant_of(sd)
  required = VGG_SHAPES if kind == "vgg" else decoder_shapes(variant)
  optional = VGG_OPTIONAL_SHAPES if kind == "vgg" else {}
  what = ("a normalised VGG-19 (vgg_normalised)" if kind == "vgg" else
          "an AdaIN decoder" if variant == Variant() else
          f"an AdaIN decoder of variant {variant.name!r}")
  missing = [k for k in required if k not in sd]
  if missing:
    raise WeightsError(path, f"not {what}: missing {len(missing)} tensor(s), e.g. {missing[0]!r}")
  unexpected = [k for k in sd if k not in required and k not in optional]
  if unexpected:
    raise WeightsError(path, f"not {what}: unexpected tensor {unexpected[0]!r}")
  out = {}
  for key, arr in sd.items():
    want = required.get(key) or optional[key]
    if tuple(arr.shape) != want:
      raise WeightsError(path, f"not {what}: {key} has shape {tuple(arr.shape)}, expected {want}")
    if not np.issubdtype(arr.dtype, np.floating):
      raise WeightsError(path, f"{key} has dtype {arr.dtype}, expected floating point")
    if key in required:
      if not np.all(np.isfinite(arr)):
        raise WeightsError(path, f"{key} holds NaN or Inf values")
      out[key] = np.asarray(arr, np.float32)
  return out


# The model's variables by name: their Flax NNX paths joined by "/" (adain.models.adain.network' attributes),
# each a state dict array: conv kernels transposed from OIHW to HWIO, norm arrays as they are.
NORM_VARIABLES = {"weight": "scale", "bias": "bias", "running_mean": "mean", "running_var": "var"}


def _names(variant: Variant) -> list[tuple[str, str, str]]:
  """(state dict kind, state dict key, model variable name) for every variable of the model."""
  names = []
  for module, kind, layers in (("encoder", "vgg", ENCODER_LAYERS), ("decoder", "decoder", decoder_layers(variant))):
    for i, layer in enumerate(layers):
      names.append((kind, f"{layer.torch_index}.weight", f"{module}/convs/{i}/kernel"))
      names.append((kind, f"{layer.torch_index}.bias", f"{module}/convs/{i}/bias"))
  for i, layer in enumerate(decoder_layers(variant)[:-1]):
    for name in NORM_ARRAYS.get(variant.decoder_norm, ()):
      names.append(("decoder", _norm_key(layer, name), f"decoder/norms/{i}/{NORM_VARIABLES[name]}"))
  return names


def model_arrays(vgg: StateDict, decoder: StateDict | None = None) -> tuple[Variant, dict[str, np.ndarray]]:
  """The model's variant and its variables by name, checked, in numpy: what adain.inference.stylizer runs
  from, without building the Flax model (whose import alone is a fifth of one image's start-up).

  A decoder left out is all zeros (encoding only); the variant is the one its arrays are of.
  """
  if decoder is None:
    decoder = {k: np.zeros(shape, np.float32) for k, shape in DECODER_SHAPES.items()}
  variant = variant_of(decoder)
  sds = {"vgg": check_state_dict(vgg, "vgg"), "decoder": check_state_dict(decoder, "decoder", variant=variant)}
  arrays = {}
  for kind, key, name in _names(variant):
    a = sds[kind][key]
    arrays[name] = np.ascontiguousarray(np.transpose(a, (2, 3, 1, 0))) if a.ndim == 4 else a
  return variant, arrays


def model_from_arrays(variant: Variant, arrays: dict) -> AdaIN:
  """The Flax model holding ``arrays`` (model_arrays' names; numpy, device arrays or tracers:
  adain.inference.stylizer's programs build the model inside their trace)."""
  from adain.models.adain.network import AdaIN
  from adain.models.interface import fill

  return fill(AdaIN(variant, init=False), arrays)


def model_from_state_dicts(vgg: StateDict, decoder: StateDict | None = None) -> AdaIN:
  """An AdaIN model holding these weights (see model_arrays); built with placeholders and
  filled, no random init paid for."""
  import jax

  variant, arrays = model_arrays(vgg, decoder)
  # jax.device_put, not jnp.asarray: that compiles a conversion for each new shape (0.3 s for
  # the model's arrays at start-up).
  return model_from_arrays(variant, jax.device_put(arrays))


def _state_dict(model: AdaIN, kind: str) -> StateDict:
  from adain.models.interface import arrays_of

  arrays = arrays_of(model)
  sd = {}
  for k, key, name in _names(model.variant):
    if k == kind:
      a = np.asarray(arrays[name])
      sd[key] = np.transpose(a, (3, 2, 0, 1)) if a.ndim == 4 else a
  return sd


def encoder_state_dict(model: AdaIN) -> StateDict:
  return _state_dict(model, "vgg")


def decoder_state_dict(model: AdaIN) -> StateDict:
  """The decoder's arrays, with its norm layers' (if any) as norm{index}.{weight,bias,...}."""
  return _state_dict(model, "decoder")


def save_native(path: str | os.PathLike, sd: StateDict, kind: str, **meta: str | int) -> None:
  """Writes a state dict as our native .npz (adain.weights.write_native).

  A decoder records the variant its arrays are of (variant_meta) unless ``meta`` says otherwise,
  so that every native copy, a converted .pth/.t7 cache too, loads back as what it is.
  """
  if kind == "decoder":
    meta = {**variant_meta(variant_of(sd)), **meta}
  write_native(path, sd, kind, meta)


def _checked(sd: StateDict, meta: dict[str, str] | None, kind: str, path) -> StateDict:
  """A state dict read from ``path`` checked as ``kind``; a native file's against its own
  records (its kind, and a decoder's variant: files without one are of the paper's model)."""
  if meta is None:
    return check_state_dict(sd, kind, path)
  if meta.get("kind") != kind:
    raise WeightsError(path, f"holds {meta.get('kind')!r} weights, expected {kind!r}")
  try:
    variant = Variant(meta.get("fusion", "adain"), meta.get("decoder_norm", "none"))
  except AdainError as e:
    raise WeightsError(path, e.problem) from None
  return check_state_dict(sd, kind, path, variant if kind == "decoder" else None)


def load_native(path: str | os.PathLike, kind: str) -> tuple[StateDict, dict[str, str]]:
  """Reads a native .npz (no pickles): the checked state dict and its metadata strings."""
  sd, meta = read_native(path)
  return _checked(sd, meta, kind, path), meta


def _read_any(path: Path, kind: str) -> StateDict:
  """Reads .pth (either torch.save layout), .t7 or native .npz, checked as ``kind``."""
  return _checked(*read_state_dict(path), kind, path)


def load_weights(path: str | os.PathLike, kind: str) -> StateDict:
  """A checked state dict from any supported file; converts once to native .npz beside it.

  The converted copy records the source's size and mtime; a changed source is read again.
  Where the folder is read-only the source is simply read each time.
  """
  path = Path(path)
  if path.is_dir():
    path = path / "decoder.npz"  # a training workdir: its exported latest decoder
    if kind != "decoder" or not path.is_file():
      raise WeightsError(path.parent, f"is a folder, not a {kind} weights file"
                         + (" (no decoder.npz: not a training workdir)" if kind == "decoder" else ""))
  if not path.exists():
    raise WeightsError(path, "no such file")
  st = path.stat()
  stamp = f"{st.st_size}:{st.st_mtime_ns}"
  cached = native_path(path)
  if path.suffix != ".npz" and cached.is_file():
    try:
      sd, meta = load_native(cached, kind)
      if meta.get("source") == stamp:
        return sd
    except WeightsError:
      pass  # a stale or broken conversion is simply redone
  sd = _read_any(path, kind)
  if path.suffix != ".npz":
    try:
      save_native(cached, sd, kind, source=stamp)
    except OSError:
      pass
  return sd


# --- Where the published files live (adain.hub finds and fetches them). ---

_RELEASE = "https://github.com/naoto0804/pytorch-AdaIN/releases/download/v0.0.0"
_LUA = "https://s3.amazonaws.com/xunhuang-public/adain"

# In order of preference: pytorch-AdaIN's release (.pth), then the authors' Lua Torch files (.t7).
# No SHA-256 is published for any of them, so the loader's architecture check is what vets them.
PUBLISHED: dict[str, tuple[Source, ...]] = {
  "vgg": (
    Source(f"{_RELEASE}/vgg_normalised.pth", "vgg_normalised.pth"),
    Source(f"{_LUA}/vgg_normalised.t7", "vgg_normalised.t7"),
  ),
  "decoder": (
    Source(f"{_RELEASE}/decoder.pth", "decoder.pth"),
    Source(f"{_LUA}/decoder.t7", "decoder.t7"),
  ),
}



def resolve_weights(kind: str, flag: str | os.PathLike | None = None, *,
                    download: bool = True, progress: bool = True) -> StateDict:
  """The state dict for ``kind``: the flag's file, else a found file, else a fresh download."""
  return hub.locate(kind, flag, PUBLISHED[kind], lambda p: load_weights(p, kind),
                    lambda p: _read_any(p, kind), download=download, progress=progress)


def state_dicts(vgg: str | os.PathLike | None = None, decoder: str | os.PathLike | None = None, *,
                download: bool = True, progress: bool = True) -> tuple[dict, dict]:
  """The (vgg, decoder) state dicts that Stylizer.from_files builds from, in numpy: loaded once
  where a run starts, they can travel to other processes (adain.pipelines.ray_engine)."""
  found, errors = {}, []
  for kind, flag in (("vgg", vgg), ("decoder", decoder)):
    try:
      found[kind] = resolve_weights(kind, flag, download=download, progress=progress)
    except WeightsError as e:
      errors.append(str(e))
  if errors:  # both problems at once, so that one message says everything to place
    raise WeightsError(None, "\n".join(errors))
  return found["vgg"], found["decoder"]
