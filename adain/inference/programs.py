"""Compiled inference programs kept on disk, so that a warm run neither traces nor lowers them.

JAX's persistent compilation cache is keyed by the lowered program, so each process traces and
lowers the network before it can look one up: ≈ 1.1 s of one 512² image's start-up on 2 CPU
cores (README, "One image, whole process"). A ``Program`` is keyed instead by what it is made
of: the function, its static first argument, its arguments' shapes and dtypes, the device, the
JAX version and XLA flags, and adain's own source. A warm run reads the executable back
(≈ 0.08 s) and calls it; tracing needs the Flax model, so a warm run does not import Flax.

The files are executables, as JAX's own cache holds: whoever can write $ADAIN_HOME/programs
can run code as the user, as with that cache. They are read with an unpickler that builds only
the JAX types that jax.experimental.serialize_executable writes, and a file that does not load
(damaged, or another JAX's) is said once on stderr, compiled again and replaced. The allow-list
is JAX 0.10's, hence the project's pin below the next minor version. ADAIN_PROGRAMS=0 turns
saving and reading off (each process then traces and compiles, as with plain jax.jit).
"""

from __future__ import annotations

import enum
import functools
import hashlib
import io
import json
import os
import pickle
import sys
import threading
from pathlib import Path

import jax
import jaxlib
import numpy as np
from jax.experimental import serialize_executable
from jax.experimental.compilation_cache import compilation_cache

from adain.files import atomic_write
from adain.hub import adain_home

FORMAT = b"adain-program/1\n"
# What serialize_executable pickles besides the executable (JAX 0.10); anything else is refused.
_JAX_TYPES = frozenset({
    ("jax", "P"), ("jax._src.core", "ManualAxisType"), ("jax._src.core", "MemorySpace"),
    ("jax._src.core", "ShapedArray"), ("jax._src.interpreters.pxla", "AllArgsInfo"),
    ("jax._src.interpreters.pxla", "UnloadedMeshExecutable"), ("jax._src.layout", "Layout"),
    ("jax._src.linear_util", "DebugInfo"), ("jax._src.mesh", "AbstractMesh"),
    ("jax._src.named_sharding", "_unpickle_named_sharding"),
    ("jax._src.sharding_impls", "_unpickle_single_device_sharding"), ("jax._src.stages", "ArgInfo"),
    ("jaxlib._jax", "DeviceList"), ("numpy", "dtype"),
})
_LOCK = threading.Lock()  # one thread compiles or loads at a time (the app's viewers share them)


def programs_dir() -> Path:
  return adain_home() / "programs"


def _source_digest(path: str) -> str:
  """adain's source and a program's own file (``path``, if outside adain), hashed: a changed
  network or op never reuses an old program."""
  root = Path(__file__).parent
  return _digest(str(root)) + ("" if Path(path).is_relative_to(root) else _digest(path))


@functools.cache
def _digest(path: str) -> str:
  """sha256 of a file, or of every .py file under a folder (read once per process)."""
  p = Path(path)
  h = hashlib.sha256()
  for f in sorted(p.rglob("*.py")) if p.is_dir() else [p]:
    if f.is_file():  # a program defined in an interpreter session has no file
      h.update(str(f).encode() + b"\0" + f.read_bytes() + b"\0")
  return h.hexdigest()


def _device(leaves) -> jax.Device:
  """Where the program runs: that of its first device array (the weights, see Stylizer.on)."""
  for x in leaves:
    if isinstance(x, jax.Array):
      return next(iter(x.devices()))
  return jax.devices()[0]


def _aval(x) -> tuple:
  dtype = x.dtype if hasattr(x, "dtype") else np.result_type(x)
  return np.shape(x), np.dtype(dtype).name, bool(getattr(x, "weak_type", False))


def _enum_member(cls, name):
  """``getattr`` as a pickle may call it: only a member of an allowed enum class, by name.

  Some Pythons (Debian's 3.11.2) pickle an enum member as ``getattr(Class, "Name")``; a plain
  getattr would let a file walk from an allowed class to anything (``__init__.__globals__``...).
  """
  allowed = (isinstance(cls, enum.EnumMeta) and isinstance(name, str)
             and (cls.__module__, cls.__qualname__) in _JAX_TYPES
             and getattr(sys.modules.get(cls.__module__), cls.__qualname__, None) is cls
             and name in cls.__members__)
  if not allowed:
    raise pickle.UnpicklingError(f"getattr({getattr(cls, '__qualname__', type(cls).__name__)}, "
                                 f"{name!r}) is not a member of a JAX enum")
  return cls.__members__[name]


class _Unpickler(serialize_executable._JaxPjrtUnpickler):
  """serialize_executable's reader, building JAX's own program types only."""

  def find_class(self, module: str, name: str):
    if (module, name) == ("builtins", "getattr"):
      return _enum_member
    if (module, name) not in _JAX_TYPES:
      raise pickle.UnpicklingError(f"{module}.{name} is not part of a JAX program")
    return super().find_class(module, name)


_warned = False


def _unreadable(path: Path, error: Exception) -> None:
  """One line on stderr per process: a saved program that stops loading is a lost speed-up."""
  global _warned
  if not _warned:
    _warned = True
    reason = " ".join(f"{type(error).__name__}: {error}".split())[:200]
    print(f"saved program {path} unreadable ({reason}); compiling it again", file=sys.stderr)


def _out_tree(outputs: int | None):
  """A program's outputs: one array (None) or a tuple of that many."""
  return jax.tree.structure(0 if outputs is None else (0,) * outputs)


def _load(data: bytes, in_tree, device: jax.Device) -> jax.stages.Compiled:
  """A saved program (see _save), as serialize_executable.deserialize_and_load builds it."""
  if not data.startswith(FORMAT):
    raise ValueError("not an adain program")
  header, payload = data[len(FORMAT):].split(b"\n", 1)
  outputs = json.loads(header)["outputs"]
  unloaded, args_info_flat, no_kwargs = _Unpickler(io.BytesIO(payload), device.client, [device]).load()
  return jax.stages.Compiled(unloaded.load(), [], in_tree.unflatten(args_info_flat),
                             _out_tree(outputs), no_kwargs=no_kwargs)


def _compile(lowered: jax.stages.Lowered) -> jax.stages.Compiled:
  """``lowered.compile()`` past JAX's persistent cache, if one is configured: an executable read
  from it serializes without its machine code (calling it later fails, "Function ... not found")."""
  if not jax.config.jax_enable_compilation_cache or jax.config.jax_compilation_cache_dir is None:
    return lowered.compile()
  jax.config.update("jax_enable_compilation_cache", False)
  compilation_cache.reset_cache()  # JAX decides once per process whether it uses its cache
  try:
    return lowered.compile()
  finally:
    jax.config.update("jax_enable_compilation_cache", True)
    compilation_cache.reset_cache()


def _save(path: Path, compiled: jax.stages.Compiled) -> None:
  """Writes the program atomically; a folder that cannot be written keeps it in memory only."""
  payload, _, out_tree = serialize_executable.serialize(compiled)
  outputs = None if out_tree == _out_tree(None) else out_tree.num_leaves
  if out_tree != _out_tree(outputs):
    raise TypeError(f"a Program returns an array or a tuple of arrays, not {out_tree}")
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
      f.write(FORMAT + json.dumps({"outputs": outputs}).encode() + b"\n" + payload)
  except OSError:
    pass


class Program:
  """A jitted function of (static, *args) whose executables are saved per argument shapes.

  Use as a decorator. The function returns an array or a tuple of arrays; ``static`` is
  hashable and its repr says all it is (adain.models.adain.architecture.Variant).
  """

  def __init__(self, fn):
    functools.update_wrapper(self, fn)
    self._jit = jax.jit(fn, static_argnums=0)
    self._compiled: dict[tuple, jax.stages.Compiled] = {}

  def __call__(self, static, *args):
    leaves, in_tree = jax.tree.flatten((args, {}))
    device = _device(leaves)
    signature = (static, in_tree, tuple(_aval(x) for x in leaves), device.id)
    compiled = self._compiled.get(signature)
    if compiled is None:
      with _LOCK:
        compiled = self._compiled.get(signature) or self._get(signature, device, args)
        self._compiled[signature] = compiled
    return compiled(*args)

  def __len__(self) -> int:
    """How many executables this process holds of it: one per argument signature."""
    return len(self._compiled)

  def _get(self, signature, device: jax.Device, args) -> jax.stages.Compiled:
    """The saved program for this signature, else a new one, compiled and saved (only
    compiled with ADAIN_PROGRAMS=0: nothing read or written)."""
    static, in_tree, avals, _ = signature
    if os.environ.get("ADAIN_PROGRAMS", "1").strip() == "0":
      return self._jit.trace(static, *args).lower().compile()
    key = hashlib.sha256(json.dumps([
        FORMAT.decode(), self.__module__, self.__qualname__, repr(static), str(in_tree), avals,
        jax.__version__, jaxlib.__version__, device.platform, device.client.platform_version,
        device.device_kind, device.id, os.environ.get("XLA_FLAGS", ""), jax.config.jax_enable_x64,
        _source_digest(self.__wrapped__.__code__.co_filename)]).encode()).hexdigest()
    path = programs_dir() / f"{self.__name__.strip('_')}-{key[:40]}.bin"
    try:
      return _load(path.read_bytes(), in_tree, device)
    except FileNotFoundError:
      pass  # none saved yet
    except Exception as e:  # noqa: BLE001  (damaged, foreign or refused: compiled again below)
      _unreadable(path, e)
    compiled = _compile(self._jit.trace(static, *args).lower())
    _save(path, compiled)
    return compiled
