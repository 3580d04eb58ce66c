"""Our .npz files (native weights, style codes): written atomically, read without pickles.

Reading is our own, member by member, rather than np.load's: a crafted file must not make us
allocate or inflate more than it can hold. Each member's .npy header is parsed first and its
declared shape checked against the member's size before a byte of data is read, and the total
size is capped (MAX_BYTES), so a small file cannot claim gigabytes, whether by its header or by
a deflate bomb; zipfile stops inflating at the size the archive declares and checks the CRC.
"""

from __future__ import annotations

import math
import os
import zipfile

import numpy as np

from adain.errors import AdainError
from adain.files import atomic_write

# Far above any AdaIN file (the whole VGG-19 is 80 MB in float32), far below what hurts.
MAX_BYTES = 256 * 2**20
_MAX_HEADER = 10000
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}


def write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
  """Writes to a temp file in the same folder, renamed into place: never a partial file."""
  with atomic_write(path) as f:
    np.savez(f, **arrays)


def read_npz(path: str | os.PathLike, fmt: str, error: type[AdainError] = AdainError) -> dict:
  """All arrays of an .npz whose ``__format__`` entry is ``fmt``; pickled entries are refused."""
  try:
    with zipfile.ZipFile(path) as z:
      members = z.infolist()
      total = sum(m.file_size for m in members)
      if total > MAX_BYTES:
        raise ValueError(f"its members would take {total} bytes, over the {MAX_BYTES}-byte limit")
      arrays = {m.filename.removesuffix(".npy"): _read_member(z, m) for m in members}
  except (OSError, ValueError, EOFError, zipfile.BadZipFile, NotImplementedError) as e:
    raise error(path, f"not a readable .npz file ({e})") from None
  found = str(arrays.pop("__format__", None))
  if found != fmt:
    raise error(path, f"not an adain {fmt.split('/')[0].removeprefix('adain-')} file "
                f"(format {found!r}, expected {fmt!r})")
  return arrays


def _read_member(z: zipfile.ZipFile, member: zipfile.ZipInfo) -> np.ndarray:
  """One .npy member, its header checked against its declared size before its data is read."""
  with z.open(member) as f:
    read_header = _HEADER_READERS.get(np.lib.format.read_magic(f))
    if read_header is None:
      raise ValueError(f"{member.filename} is not in .npy format 1.0 or 2.0")
    shape, fortran, dtype = read_header(f, max_header_size=_MAX_HEADER)
    if dtype.hasobject:
      raise ValueError(f"{member.filename} holds Python objects (pickles are refused)")
    nbytes = math.prod(shape) * dtype.itemsize
    left = member.file_size - f.tell()
    if nbytes != left:
      raise ValueError(f"{member.filename} declares shape {shape} of {dtype} ({nbytes} bytes) "
                       f"but holds {left} bytes")
    f.seek(0)  # read_array reads the header again, then the data in chunks into one array
    try:
      return np.lib.format.read_array(f, allow_pickle=False, max_header_size=_MAX_HEADER)
    except ValueError:  # a short read ("EOF: reading array data")
      raise ValueError(f"{member.filename} is truncated") from None
