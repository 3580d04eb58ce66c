"""Weight file formats, read without torch and without running pickles.

Every format becomes a plain state dict, ``{"29.weight": ndarray, ...}``, keyed as the PyTorch
module that saved it: ``torch_pickle`` reads ``torch.save``'s files (both layouts), ``t7`` Lua
Torch's, and ``npz`` our native container (written by ``write_native``). What the arrays must be
is each network's business (adain.models.NAME.weights); where files are found and fetched is
adain.hub's.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np

from adain.errors import WeightsError, read_weights_bytes
from adain.weights.npz import read_npz, write_npz

StateDict = dict[str, np.ndarray]
NATIVE_FORMAT = "adain-weights/1"


def write_native(path: str | os.PathLike, sd: StateDict, kind: str, meta: dict[str, str | int]) -> None:
  """A state dict as our native .npz, with its ``kind`` and string metadata (``__key__`` members)."""
  header = {"__format__": NATIVE_FORMAT, "__kind__": kind}
  header.update({f"__{k}__": str(v) for k, v in meta.items()})
  write_npz(path, {**{k: np.asarray(v) for k, v in header.items()}, **sd})


def read_native(path: str | os.PathLike) -> tuple[StateDict, dict[str, str]]:
  """A native .npz's arrays and metadata strings (``kind`` among them), unchecked."""
  arrays = read_npz(path, NATIVE_FORMAT, WeightsError)
  meta = {k.strip("_"): str(arrays.pop(k)) for k in list(arrays) if k.startswith("__")}
  return arrays, meta


def read_state_dict(path: str | os.PathLike) -> tuple[StateDict, dict[str, str] | None]:
  """Any supported file's arrays, the format chosen by content, not name: native .npz (with its
  metadata), .pth in either torch.save layout or .t7 (metadata None)."""
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
      return read_native(path)
  if data.startswith(b"PK") or data[:1] == b"\x80":
    from adain.weights.torch_pickle import parse_torch_state_dict
    return parse_torch_state_dict(data, path), None
  from adain.weights.t7 import parse_t7_state_dict
  return parse_t7_state_dict(data, path), None


def native_path(source: Path) -> Path:
  """Where the converted copy of a .pth/.t7 file is kept: beside it."""
  return source.with_name(source.name + ".adain.npz")
