"""State dicts (PyTorch naming, OIHW arrays) to and from the Flax model, and its arrays by name.

Every weights format we read (.pth in both torch.save layouts, Lua Torch .t7, our native .npz)
first becomes a plain ``{"29.weight": ndarray, ...}`` dict keyed like pytorch-AdaIN's
nn.Sequential; this module checks names and shapes against the architecture and fills the model.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from adain.architecture import ENCODER_LAYERS, VGG_UNUSED_LAYERS, Variant, decoder_layers
from adain.errors import AdainError, WeightsError, read_weights_bytes
from adain.npz import read_npz, write_npz

StateDict = dict[str, np.ndarray]

if TYPE_CHECKING:
  import jax

  from adain.models import AdaIN


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


# The model's variables by name: their Flax NNX paths joined by "/" (adain.models' attributes),
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
  """The model's variant and its variables by name, checked, in numpy: what adain.stylizer runs
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
  adain.stylizer's programs build the model inside their trace)."""
  from flax import nnx

  from adain.models import AdaIN

  model = AdaIN(variant, init=False)
  for path, node in nnx.iter_graph(model):
    if isinstance(node, nnx.Variable):
      node.set_value(arrays["/".join(map(str, path))])
  return model


def arrays_of(model: AdaIN) -> dict[str, jax.Array]:
  """A model's variables by name (see model_arrays)."""
  from flax import nnx

  return {"/".join(map(str, path)): node.get_value() for path, node in nnx.iter_graph(model)
          if isinstance(node, nnx.Variable)}


def model_from_state_dicts(vgg: StateDict, decoder: StateDict | None = None) -> AdaIN:
  """An AdaIN model holding these weights (see model_arrays); built with placeholders and
  filled, no random init paid for."""
  import jax

  variant, arrays = model_arrays(vgg, decoder)
  # jax.device_put, not jnp.asarray: that compiles a conversion for each new shape (0.3 s for
  # the model's arrays at start-up).
  return model_from_arrays(variant, jax.device_put(arrays))


def _state_dict(model: AdaIN, kind: str) -> StateDict:
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


NATIVE_FORMAT = "adain-weights/1"


def save_native(path: str | os.PathLike, sd: StateDict, kind: str, **meta: str | int) -> None:
  """Writes a state dict as our native .npz, with ``kind`` and string metadata.

  A decoder records the variant its arrays are of (variant_meta) unless ``meta`` says otherwise,
  so that every native copy, a converted .pth/.t7 cache too, loads back as what it is.
  """
  if kind == "decoder":
    meta = {**variant_meta(variant_of(sd)), **meta}
  header = {"__format__": NATIVE_FORMAT, "__kind__": kind}
  header.update({f"__{k}__": str(v) for k, v in meta.items()})
  write_npz(path, {**{k: np.asarray(v) for k, v in header.items()}, **sd})


def load_native(path: str | os.PathLike, kind: str) -> tuple[StateDict, dict[str, str]]:
  """Reads a native .npz (no pickles): the checked state dict and its metadata strings.

  A decoder's arrays are checked against the variant the file records (variant_meta; files
  without one are of the paper's model).
  """
  arrays = read_npz(path, NATIVE_FORMAT, WeightsError)
  meta = {k.strip("_"): str(arrays.pop(k)) for k in list(arrays) if k.startswith("__")}
  if meta.get("kind") != kind:
    raise WeightsError(path, f"holds {meta.get('kind')!r} weights, expected {kind!r}")
  try:
    variant = Variant(meta.get("fusion", "adain"), meta.get("decoder_norm", "none"))
  except AdainError as e:
    raise WeightsError(path, e.problem) from None
  return check_state_dict(arrays, kind, path, variant if kind == "decoder" else None), meta


def _read_any(path: Path, kind: str) -> StateDict:
  """Reads .pth (either torch.save layout), .t7 or native .npz, chosen by content, not name."""
  data = read_weights_bytes(path)
  if not data:
    raise WeightsError(path, "empty file, not a weights file")
  if data.startswith(b"PK"):
    try:
      with zipfile.ZipFile(io.BytesIO(data)) as z:
        native = "__format__.npy" in z.namelist()
    except (zipfile.BadZipFile, OSError) as e:
      raise WeightsError(path, f"damaged zip archive ({e})") from None
    if native:
      return load_native(path, kind)[0]
  if data.startswith(b"PK") or data[:1] == b"\x80":
    from adain.weights.torch_pickle import parse_torch_state_dict
    return check_state_dict(parse_torch_state_dict(data, path), kind, path)
  from adain.weights.t7 import parse_t7_state_dict
  return check_state_dict(parse_t7_state_dict(data, path), kind, path)


def native_path(source: Path) -> Path:
  """Where the converted copy of a .pth/.t7 file is kept: beside it."""
  return source.with_name(source.name + ".adain.npz")


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


# --- Where weights are looked for, and fetched from on first use. ---

FILENAMES = {"vgg": ("vgg_normalised.pth", "vgg_normalised.t7"),
             "decoder": ("decoder.pth", "decoder.t7")}


def adain_home() -> Path:
  """Per-user weights cache and download folder: $ADAIN_HOME, default ~/.cache/adain."""
  return Path(os.environ.get("ADAIN_HOME") or "~/.cache/adain").expanduser()


def search_dirs() -> tuple[Path, Path]:
  return Path("checkpoints"), adain_home()


def find_weights(kind: str) -> Path | None:
  """The first published-name file in checkpoints/ (cwd), then the per-user cache."""
  for folder in search_dirs():
    for name in FILENAMES[kind]:
      if (folder / name).is_file():
        return folder / name
  return None


def resolve_weights(kind: str, flag: str | os.PathLike | None = None, *,
                    download: bool = True, progress: bool = True) -> StateDict:
  """The state dict for ``kind``: the flag's file, else a found file, else a fresh download."""
  if flag:
    return load_weights(flag, kind)
  found = find_weights(kind)
  if found is not None:
    return load_weights(found, kind)
  from adain.weights import download as dl
  sources = dl.PUBLISHED[kind]
  reasons = []
  for source in sources if download else ():
    dest = adain_home() / source.filename
    try:
      dl.fetch([source.url], dest, lambda p: _read_any(p, kind), progress=progress)
      return load_weights(dest, kind)
    except dl.DownloadError as e:
      reasons.append(e.problem.removeprefix("download failed from every source: "))
  checkpoints, home = search_dirs()
  first, *others = sources
  alternatives = "".join(f"; {s.filename} from {s.url} works too" for s in others)
  raise WeightsError(None, (
      f"no {kind} weights found, and fetching them failed ({'; '.join(reasons) or 'downloads are off'}). "
      f"Place {first.filename} from {first.url} at {checkpoints / first.filename} or "
      f"{home / first.filename}{alternatives}; or pass --{kind} FILE."))


def state_dicts(vgg: str | os.PathLike | None = None, decoder: str | os.PathLike | None = None, *,
                download: bool = True, progress: bool = True) -> tuple[dict, dict]:
  """The (vgg, decoder) state dicts that Stylizer.from_files builds from, in numpy: loaded once
  where a run starts, they can travel to other processes (adain.datasets.ray_engine)."""
  found, errors = {}, []
  for kind, flag in (("vgg", vgg), ("decoder", decoder)):
    try:
      found[kind] = resolve_weights(kind, flag, download=download, progress=progress)
    except WeightsError as e:
      errors.append(str(e))
  if errors:  # both problems at once, so that one message says everything to place
    raise WeightsError(None, "\n".join(errors))
  return found["vgg"], found["decoder"]
