"""The memory budget: how much one call may take, so that stylizing never swaps or runs out.

Host memory is what XLA's CPU runtime uses; on an accelerator the same estimate bounds a batch
(and a video's frames per step). adain.inference.tiling splits an image that does not fit.
"""

from __future__ import annotations

import os
from types import ModuleType

import jax

# Host memory one untiled stylization needs per image pixel is the network's BYTES_PER_PIXEL
# (AdaIN: XLA's temporaries for encode and decode, 963 bytes by compiled memory_analysis at 256²
# to 1024², plus convolution scratch).
TILE_SIZES = (2048, 1024, 512, 256)  # auto tiling's choices, largest first: fewer margins
MAX_BATCH = 8  # images per call on an accelerator unless asked for more


def available_memory() -> int:
  """Bytes the kernel says can be allocated without swapping (MemAvailable), else free RAM."""
  try:
    with open("/proc/meminfo") as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def default_budget() -> int:
  """A quarter of the available memory: other processes share it."""
  return available_memory() // 4


def choose_tile(h: int, w: int, net: ModuleType, budget: int | None = None) -> int:
  """0 (untiled) when an h x w stylization by network ``net`` (adain.models.network) fits the
  budget (``default_budget`` if None), else the largest tile whose window does."""
  budget = default_budget() if budget is None else budget
  if h * w * net.BYTES_PER_PIXEL <= budget:
    return 0
  for t in TILE_SIZES:
    if (t + 2 * net.DOWNSAMPLE * net.TILE_MARGIN) ** 2 * net.BYTES_PER_PIXEL <= budget:
      return t
  return TILE_SIZES[-1]


def batch_that_fits(h: int, w: int, cap: int, net: ModuleType, budget: int | None = None) -> int:
  """How many h x w stylizations by ``net``, 1 to ``cap``, one call may take within the budget
  (``default_budget`` if None)."""
  budget = default_budget() if budget is None else budget
  return int(max(1, min(cap, budget // (h * w * net.BYTES_PER_PIXEL))))


def batch_cap(requested: int | None = None) -> int:
  """The most images per call: ``requested`` if given, else 1 on a CPU (batches were slower
  there: `make bench`, README "Video") and MAX_BATCH on an accelerator."""
  return requested or (1 if jax.default_backend() == "cpu" else MAX_BATCH)


