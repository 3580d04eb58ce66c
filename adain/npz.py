"""Our .npz files (native weights, style codes): written atomically, read without pickles."""

from __future__ import annotations

import os
import zipfile

import numpy as np

from adain.errors import AdainError


def write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
  """Writes to a temp file in the same folder, renamed into place: never a partial file."""
  path = os.fspath(path)
  tmp = f"{path}.tmp-{os.getpid()}"
  try:
    with open(tmp, "wb") as f:
      np.savez(f, **arrays)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def read_npz(path: str | os.PathLike, fmt: str, error: type[AdainError] = AdainError) -> dict:
  """All arrays of an .npz whose ``__format__`` entry is ``fmt``; pickled entries are refused."""
  try:
    with np.load(path, allow_pickle=False) as z:
      arrays = {k: z[k] for k in z.files}
  except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
    raise error(path, f"not a readable .npz file ({e})") from None
  found = str(arrays.pop("__format__", None))
  if found != fmt:
    raise error(path, f"not an adain {fmt.split('/')[0].removeprefix('adain-')} file "
                f"(format {found!r}, expected {fmt!r})")
  return arrays
