"""MicroAST's weights: its four state dicts (PyTorch naming, OIHW arrays), checked, to and from the
model's arrays by name; where its published files live and how a folder of them is found.

The published files are legacy ``torch.save`` pickles (``*.pth.tar``), read by
adain.weights.torch_pickle without torch; each is converted once to our native .npz beside it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from adain import hub
from adain.errors import WeightsError
from adain.hub.download import Source
from adain.models.microast.architecture import (
  DECODER_OUT,
  DECODER_RES1,
  DECODER_RES2,
  DECODER_UP,
  ENCODER_RES1,
  ENCODER_RES2,
  ENCODER_STEM,
  MODULATOR_CONVS,
  PARTS,
  state_dict_shapes,
)
from adain.weights import (
  StateDict,
  native_path,
  read_native,
  read_state_dict,
  write_native,
)

if TYPE_CHECKING:
  from adain.models.microast.network import MicroAST

SUBDIR = "microast"  # checkpoints/microast/, $ADAIN_HOME/microast/
_REPO = "https://github.com/EndyWon/MicroAST/raw/main/models"
FILENAMES = {part: f"{part}_iter_160000.pth.tar" for part in PARTS}
# A training workdir's weights (train.trainer exports them at every checkpoint): native .npz.
EXPORTS = {part: f"microast_{part}.npz" for part in PARTS}
PUBLISHED = {part: Source(f"{_REPO}/{name}", name) for part, name in FILENAMES.items()}
SHA256 = {
    "content_encoder": "c8d895c0eec52507c157e102fab217c37f0c399ef3e168ef8b0b2677714660a4",
    "style_encoder": "94f6b3fa386828692c20809a0af8bd0eba9c04e90a7d8842086976e4d223c5af",
    "modulator": "8588055baf7d5ad8398d595d5518c6f030e3ff8dbb6007a7c1779776e11da28b",
    "decoder": "32e04a46b953fd9f94ec9e20f351511305a5260e000c18f9aef6570d5f1e23d9",
}
SHAPES = {part: state_dict_shapes(part) for part in PARTS}
_WHAT = {part: "MicroAST's " + part.replace("_", " ") for part in PARTS}


def _native_kind(part: str) -> str:
  return f"microast-{part}"


def check_state_dict(sd: StateDict, part: str, path: str | os.PathLike | None = None) -> StateDict:
  """The part's arrays as float32, or WeightsError naming the file and what is wrong.

  The content and style encoders share one architecture, so a swapped pair is not caught here.
  """
  required = SHAPES[part]
  if set(sd) != set(required):
    others = [p for p in PARTS if p != part and set(sd) == set(SHAPES[p])
              and SHAPES[p] != required]
    if others:
      raise WeightsError(path, f"holds {_WHAT[others[0]]}, not {_WHAT[part]}")
    missing = [k for k in required if k not in sd]
    if missing:
      raise WeightsError(path, f"not {_WHAT[part]} (another model's file?): missing "
                         f"{len(missing)} tensor(s), e.g. {missing[0]!r}")
    unexpected = next(k for k in sd if k not in required)
    raise WeightsError(path, f"not {_WHAT[part]}: unexpected tensor {unexpected!r}")
  out = {}
  for key, want in required.items():
    arr = sd[key]
    if tuple(arr.shape) != want:
      raise WeightsError(path, f"not {_WHAT[part]}: {key} has shape {tuple(arr.shape)}, expected {want}")
    if not np.issubdtype(arr.dtype, np.floating):
      raise WeightsError(path, f"{key} has dtype {arr.dtype}, expected floating point")
    if not np.all(np.isfinite(arr)):
      raise WeightsError(path, f"{key} holds NaN or Inf values")
    out[key] = np.asarray(arr, np.float32)
  return out


# The model's variables by name: their Flax NNX paths joined by "/" (adain.models.microast.network's
# attributes), each a state dict array: conv kernels transposed from OIHW to HWIO.
def _conv_names() -> list[tuple[str, str, str]]:
  """(part, state dict prefix, model module path) for every conv of the model."""
  encoder = ([(c.name, f"stem/{i}") for i, c in enumerate(ENCODER_STEM)]
             + [(c.name, f"res1/conv{j + 1}") for j, c in enumerate(ENCODER_RES1)]
             + [(c.name, f"res2/conv{j + 1}") for j, c in enumerate(ENCODER_RES2)])
  names = [(part, key, f"{part}/{module}") for part in ("content_encoder", "style_encoder")
           for key, module in encoder]
  names += [("modulator", c.name, f"modulator/{c.name.split('.')[0]}") for c in MODULATOR_CONVS]
  names += ([("decoder", c.name, f"decoder/res1/conv{j + 1}") for j, c in enumerate(DECODER_RES1)]
            + [("decoder", c.name, f"decoder/res2/conv{j + 1}") for j, c in enumerate(DECODER_RES2)]
            + [("decoder", c.name, f"decoder/up/{i}") for i, (c, _) in enumerate(DECODER_UP)]
            + [("decoder", DECODER_OUT.name, "decoder/out")])
  return names


def _names() -> list[tuple[str, str, str]]:
  """(part, state dict key, model variable name) for every variable of the model."""
  return [(part, f"{prefix}.{suffix}", f"{module}/{var}") for part, prefix, module in _conv_names()
          for suffix, var in (("weight", "kernel"), ("bias", "bias"))]


def model_arrays(state_dicts: dict[str, StateDict]) -> dict[str, np.ndarray]:
  """The model's variables by name, checked, in numpy, from the four parts' state dicts."""
  sds = {part: check_state_dict(state_dicts[part], part) for part in PARTS}
  arrays = {}
  for part, key, name in _names():
    a = sds[part][key]
    arrays[name] = np.ascontiguousarray(np.transpose(a, (2, 3, 1, 0))) if a.ndim == 4 else a
  return arrays


def model_from_arrays(arrays: dict) -> MicroAST:
  """The Flax model holding ``arrays`` (model_arrays' names; numpy, device arrays or tracers)."""
  from adain.models.interface import fill
  from adain.models.microast.network import MicroAST

  return fill(MicroAST(init=False), arrays)


def model_from_state_dicts(state_dicts: dict[str, StateDict]) -> MicroAST:
  """A MicroAST model holding these weights, built with placeholders and filled."""
  import jax

  return model_from_arrays(jax.device_put(model_arrays(state_dicts)))


def state_dicts_of(model: MicroAST) -> dict[str, StateDict]:
  """The model's four state dicts in the published layout (OIHW), e.g. to save with torch."""
  from adain.models.interface import arrays_of

  arrays = arrays_of(model)
  sds = {part: {} for part in PARTS}
  for part, key, name in _names():
    a = np.asarray(arrays[name])
    sds[part][key] = np.transpose(a, (3, 2, 0, 1)) if a.ndim == 4 else a
  return sds


def save_exports(folder: str | os.PathLike, model: MicroAST, **meta: str | int) -> None:
  """The model's four parts as native .npz under EXPORTS' names in ``folder`` (each written
  atomically), which find_files reads as a weights folder."""
  for part, sd in state_dicts_of(model).items():
    write_native(Path(folder) / EXPORTS[part], sd, _native_kind(part), meta)


# --- Files: any readable format, converted once to native .npz beside the source. ---

def _read_any(path: Path, part: str) -> StateDict:
  sd, meta = read_state_dict(path)
  if meta is not None and meta.get("kind") != _native_kind(part):
    raise WeightsError(path, f"holds {meta.get('kind')!r} weights, not {_WHAT[part]}")
  return check_state_dict(sd, part, path)


def load_weights(path: str | os.PathLike, part: str) -> StateDict:
  """A checked state dict of ``part`` from any supported file (.pth/.pth.tar, native .npz).

  A .pth is converted once to native .npz beside it, which records the source's size and mtime;
  a changed source is read again; a read-only folder simply means reading the source each time.
  """
  path = Path(path)
  if not path.is_file():
    raise WeightsError(path, f"no such file ({_WHAT[part]})")
  st = path.stat()
  stamp = f"{st.st_size}:{st.st_mtime_ns}"
  cached = native_path(path)
  if path.suffix != ".npz" and cached.is_file():
    try:
      sd, meta = read_native(cached)
      if meta.get("kind") == _native_kind(part) and meta.get("source") == stamp:
        return check_state_dict(sd, part, cached)
    except WeightsError:
      pass  # a stale or broken conversion is simply redone
  sd = _read_any(path, part)
  if path.suffix != ".npz":
    try:
      write_native(cached, sd, _native_kind(part), {"source": stamp})
    except OSError:
      pass
  return sd


def find_files(weights_dir: str | os.PathLike | None = None, *, download: bool = True,
               progress: bool = True) -> dict[str, Path]:
  """The four published files: all in ``weights_dir`` (``--weights DIR``) under their published
  names, or a training workdir's four EXPORTS; else each found in checkpoints/microast/, then $ADAIN_HOME/microast/; else downloaded
  there (SHA-256 checked before it is renamed into place). One WeightsError says what is missing."""
  if weights_dir is not None:
    folder = Path(weights_dir)
    if not folder.is_dir():
      raise WeightsError(folder, "not a folder (MicroAST's --weights is a folder holding its four "
                         f"files: {', '.join(FILENAMES.values())})")
    if all((folder / name).is_file() for name in EXPORTS.values()):  # a training workdir
      return {part: folder / name for part, name in EXPORTS.items()}
    missing = [part for part, name in FILENAMES.items() if not (folder / name).is_file()]
    if missing:
      others = "".join(f"; {folder / FILENAMES[p]} too ({PUBLISHED[p].url})" for p in missing[1:])
      raise WeightsError(folder / FILENAMES[missing[0]], (
          f"missing: MicroAST's weights folder needs its four published files "
          f"({', '.join(FILENAMES.values())}) or, a training workdir, its four exports "
          f"({', '.join(EXPORTS.values())}); this one is at {PUBLISHED[missing[0]].url}{others}"))
    return {part: folder / name for part, name in FILENAMES.items()}
  from adain.hub import download as dl

  found, failed = {}, []
  for part, source in PUBLISHED.items():
    path = hub.find([source.filename], SUBDIR)
    if path is None and download:
      dest = hub.adain_home() / SUBDIR / source.filename
      try:
        path = dl.fetch([source.url], dest, lambda tmp, part=part: _read_any(tmp, part),
                        sha256=SHA256[part], progress=progress)
      except dl.DownloadError as e:
        failed.append((source, e.problem.removeprefix("download failed from every source: ")))
        continue
    if path is None:
      failed.append((source, "downloads are off"))
    else:
      found[part] = path
  if failed:
    checkpoints, home = hub.search_dirs(SUBDIR)
    why = "; ".join(dict.fromkeys(reason.rpartition(" (")[2].rstrip(")") if " (" in reason else reason
                                  for _, reason in failed))
    files = ", ".join(f"{s.url} as {checkpoints / s.filename}" for s, _ in failed)
    raise WeightsError(None, (
        f"MicroAST's weights were not found and not fetched ({why}): download {files} (or into "
        f"{home}/), or pass --weights DIR for a folder holding all four"))
  return found


def state_dicts(weights_dir: str | os.PathLike | None = None, *, download: bool = True,
                progress: bool = True) -> dict[str, StateDict]:
  """The four checked state dicts (see find_files), by part name."""
  return {part: load_weights(path, part)
          for part, path in find_files(weights_dir, download=download, progress=progress).items()}
