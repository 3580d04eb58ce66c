"""Stylized copies of image datasets: the work of python -m adain.stylize_dataset, on one host
(``stylize_all``) or on a Ray cluster (adain.pipelines.ray_engine, which runs the same per-image
steps).

A run is planned as jobs (content, style, output), a pure function of the trees, the seed and
the shard (``plan``); outputs already on disk are skipped, so a killed or stopped run resumes;
every output is written by temporary name and rename; each run keeps a manifest. Both engines
take the run's ``Options`` (a frozen dataclass: it travels to Ray's actors), never flags.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
import queue
import random
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from adain.errors import AdainError, one_line
from adain.files import atomic_write, temp_target

SAVED_SUFFIXES = (".jpg", ".jpeg", ".png")  # what adain.media.images.save_image writes
OOM_TILE = 512  # tile size for one image that does not fit the device's memory whole
# A local Ray started for one run (--ray without an address) is one machine: Ray binds it to
# 127.0.0.1 only in its one-machine mode (named for macOS), and reads these when it is imported.
LOCAL_RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


@dataclasses.dataclass(frozen=True)
class Options:
  """What a run does to each image (python -m adain.stylize_dataset's flags of the same names)."""

  num_styles: int = 1
  alpha: float = 1.0
  content_size: int = 0
  style_size: int = 512
  crop: int = 0
  seed: int = 0
  shard: tuple[int, int] = (0, 1)
  ext: str | None = None  # None: the content's own (png for formats we do not write)
  batch_size: int | None = None  # None: memory.batch_cap's
  workers: int = 4
  tile: int | None = None
  dtype: str = "float32"
  model: str = "adain"
  vgg: str | None = None
  decoder: str | None = None
  weights: str | None = None  # MicroAST's folder
  ray: str | None = None  # None: one host; "": a local Ray; else the cluster's address
  ray_actors: int | None = None


def list_images(root: Path, extensions: list[str], exclude: Path | None = None) -> list[Path]:
  """Files under root at any depth whose extension is one of ``extensions`` in any case, as
  sorted paths relative to root. Hidden files and folders, and the folder ``exclude``, are skipped."""
  exts = {"." + e.lstrip(".").lower() for e in extensions}
  found = []
  for folder, dirs, files in os.walk(root):
    dirs[:] = [d for d in dirs if not d.startswith(".")
               and (exclude is None or Path(folder, d).resolve() != exclude)]
    found += [Path(folder, f).relative_to(root) for f in files
              if not f.startswith(".") and Path(f).suffix.lower() in exts]
  return sorted(found, key=Path.as_posix)


def shard_of(rel: Path, n: int) -> int:
  """The shard (of n) that stylizes a content image: a hash of its relative path alone, so the
  split depends neither on the listing order nor on which other files a host sees."""
  digest = hashlib.blake2b(rel.as_posix().encode(), digest_size=8).digest()
  return int.from_bytes(digest, "big") % n


def choose_styles(seed: int, rel: Path, n_styles: int, k: int) -> list[int]:
  """k different style indices for a content image: a pure function of (seed, relative path).

  A partial Fisher-Yates shuffle driven by random.Random(str).random(), the two parts of
  Python's random module that are guaranteed to stay the same across Python versions.
  """
  rng = random.Random(f"{seed}/{rel.as_posix()}")
  picked, moved = [], {}
  for j in range(k):
    r = j + int(rng.random() * (n_styles - j))
    picked.append(moved.get(r, r))
    moved[r] = moved.get(j, j)
  return picked


def output_path(rel: Path, style: Path, ext: str | None) -> Path:
  """stylize-datasets' name, ``{stem}-stylized-{style stem}{suffix}`` in the content's subfolder."""
  suffix = f".{ext}" if ext else rel.suffix if rel.suffix.lower() in SAVED_SUFFIXES else ".png"
  return rel.parent / f"{rel.stem}-stylized-{style.stem}{suffix}"


class Job(NamedTuple):
  content: Path  # relative to --content-dir
  style: int  # index into the style list
  output: Path  # relative to --output-dir


def manifest_row(job: Job, styles: list[Path], status: str, error: str | None = None) -> dict:
  row = {"content": job.content.as_posix(), "style": styles[job.style].as_posix(),
         "output": job.output.as_posix(), "status": status}
  return row if error is None else {**row, "error": error}


def plan(contents: list[Path], styles: list[Path], options: Options) -> list[Job]:
  """This shard's outputs: every content image of the shard with its ``num_styles`` styles."""
  i, n = options.shard
  return [Job(rel, s, output_path(rel, styles[s], options.ext))
          for rel in contents if shard_of(rel, n) == i
          for s in choose_styles(options.seed, rel, len(styles), options.num_styles)]


def manifest_path(out_root: Path, shard_in: tuple[int, int]) -> Path:
  i, n = shard_in
  return out_root / ("manifest.jsonl" if n == 1 else f"manifest-{i}-of-{n}.jsonl")


def scan_outputs(out_root: Path, jobs: list[Job], also: Path) -> set[Job]:
  """The jobs whose output is already there, one listing per folder (cheap on network file
  systems); deletes the temporary files that a killed run left for these outputs and ``also``,
  never other files' (other shards may be writing into the same folders)."""
  wanted = collections.defaultdict(set)
  for j in jobs:
    wanted[out_root / j.output.parent].add(j.output.name)
  wanted[also.parent].add(also.name)
  present = set()
  for folder, names in wanted.items():
    try:
      with os.scandir(folder) as entries:
        found = [(e.name, e.path) for e in entries if e.is_file()]
    except (FileNotFoundError, NotADirectoryError):
      continue
    for name, path in found:
      if name in names:
        present.add(Path(path))
      elif temp_target(name) in names:
        Path(path).unlink(missing_ok=True)
  return {j for j in jobs if out_root / j.output in present}


class Manifest:
  """One JSON line per output: content, style, output (relative paths), status (ok or failed,
  with the error).

  Rebuilt at the start of a run from the outputs on disk, written to a temporary name and
  renamed, so a line lost or torn by a killed run never matters; then appended line by line,
  flushed, so a reader should ignore a last line without a newline (a run killed while writing).
  """

  def __init__(self, path: Path, rows: list[dict]):
    with atomic_write(path, "w") as f:
      f.writelines(json.dumps(r) + "\n" for r in rows)
    self.file = open(path, "a")
    self.lock = threading.Lock()

  def add(self, rows: list[dict]) -> None:
    with self.lock:
      self.file.write("".join(json.dumps(r) + "\n" for r in rows))
      self.file.flush()

  def close(self) -> None:
    self.file.close()


def _prefetch(pool: ThreadPoolExecutor, fn, items, depth: int):
  """(item, fn(item)) in order, with fn running on the pool up to depth ahead."""
  pending = collections.deque()
  for x in items:
    pending.append((x, pool.submit(fn, x)))
    if len(pending) >= depth:
      x, f = pending.popleft()
      yield x, f.result()
  while pending:
    x, f = pending.popleft()
    yield x, f.result()


def check_decoder(spec, decoder: str | None) -> None:
  """Refuses an Enc-Concat-Dec decoder (``spec``: a network's, see adain.models.interface): its
  styles are feature maps, no codes to reuse or batch."""
  if spec.network == "adain" and spec.fusion == "concat":
    raise AdainError(decoder, "an Enc-Concat-Dec (concat) decoder needs each style image, not "
                     "a style code; stylize with python -m adain.stylize")


# The per-image steps of both engines (one host; Ray, adain.pipelines.ray_engine). ``path`` is the
# file to open (absolute on Ray, whose workers run in other folders), ``shown`` the same file as
# the user named it, for messages and the manifest; on one host they are the same.


def read_style(path: Path, shown: Path, size: int):
  """A style image at --style-size, or the error line naming it."""
  from adain.media import images

  try:
    return images.load_image(path, size)
  except AdainError as e:
    return f"style {shown}: {e.problem}"


def style_code(stylizer, img, shown: Path, tile: int | None):
  """read_style's image's code as one numpy array (its fields stacked, (F, C): AdaIN's mean and
  std, MicroAST's eight), which any device's stylizer takes (``stacked_codes``), or the error
  line (read_style's, or the encoder's)."""
  import jax
  import numpy as np

  if isinstance(img, str):
    return img
  try:
    code = stylizer.encode_style(img, tile)
  except AdainError as e:
    return f"style {shown}: {e.problem}"
  return np.stack([np.asarray(f[0]) for f in jax.tree.leaves(code)])


def stacked_codes(stylizer, codes: list):
  """style_code's arrays as one batch of the stylizer's codes."""
  import numpy as np

  fields = np.stack(codes)  # (B, F, C)
  return stylizer.net.code_type()(*(fields[:, i] for i in range(fields.shape[1])))


def read_content(path: Path, shown: Path, size: int, crop: int):
  """A content image at --content-size, centre-cropped to --crop, or the error line naming it."""
  from adain.media import images

  try:
    img = images.load_image(path, size)
  except AdainError as e:
    return f"{shown}: {e.problem}"
  if not crop:
    return img
  h, w = img.shape[:2]
  if min(h, w) < crop:
    return f"{shown}: is {w}x{h} pixels after resizing, smaller than --crop {crop}"
  top, left = images.center_offsets(h, w, crop)
  return img[top:top + crop, left:left + crop]


def by_content(jobs: list[Job]) -> dict[Path, list[Job]]:
  """Jobs grouped by content image (each is read once for all its styles), in order."""
  grouped = collections.defaultdict(list)
  for j in jobs:
    grouped[j.content].append(j)
  return grouped


def pair_styles(jobs: list[Job], img, codes: dict, shown: Path) -> tuple[list[tuple], list[tuple[Job, str]]]:
  """One content image's (job, image, style code) items, and its jobs whose style failed, each
  with the line saying so."""
  ready, unstyled = [], []
  for j in jobs:
    code = codes[j.style]
    if isinstance(code, str):
      unstyled.append((j, f"{shown}: not stylized, {code}"))
    else:
      ready.append((j, img, code))
  return ready, unstyled


class Batcher:
  """Groups (job, image, code) items of one image size into batches: as many as fit a quarter of
  the memory, at most ``batch_size``; with more than 4 * batch_size waiting, the fullest goes."""

  def __init__(self, batch_size: int, net):
    from adain.inference import memory

    self.batch_size, self.net, self.budget = batch_size, net, memory.default_budget()
    self.groups: dict[tuple, list] = collections.defaultdict(list)
    self.waiting = 0

  def add(self, items: list[tuple]) -> list[list]:
    """Adds one content image's items (pair_styles); returns the batches now due."""
    from adain.inference import memory

    due = []
    for item in items:
      shape = item[1].shape
      self.groups[shape].append(item)
      self.waiting += 1
      if len(self.groups[shape]) >= memory.batch_that_fits(*shape[:2], self.batch_size, self.net, self.budget):
        due.append(self._pop(shape))
    if self.waiting > 4 * self.batch_size:  # memory: flush the fullest size
      due.append(self._pop(max(self.groups, key=lambda k: len(self.groups[k]))))
    return due

  def _pop(self, shape: tuple) -> list:
    group = self.groups.pop(shape)
    self.waiting -= len(group)
    return group

  def rest(self) -> list[list]:
    """The batches still waiting, at the end."""
    rest = list(self.groups.values())
    self.groups.clear()
    self.waiting = 0
    return rest


def stylize_batch(stylizer, contents_bhw3, style, alpha: float, tile: int | None):
  """Stylizer.generate of a batch, halving the batch (then tiling one image) when the device runs out
  of memory, instead of skipping images as stylize-datasets does on CUDA out-of-memory."""
  import jax
  import numpy as np

  try:
    return stylizer.generate(contents_bhw3, style, alpha, tile=tile)
  except jax.errors.JaxRuntimeError as e:
    b = len(contents_bhw3)
    if "RESOURCE_EXHAUSTED" not in str(e) or b == 1 and tile == OOM_TILE:
      raise
    if b == 1:
      return stylize_batch(stylizer, contents_bhw3, style, alpha, OOM_TILE)
    halves = [slice(0, b // 2), slice(b // 2, b)]
    return np.concatenate([stylize_batch(stylizer, contents_bhw3[h], style[h], alpha, tile) for h in halves])


def stylize_group(stylizer, batch: list[tuple], alpha: float, tile: int | None,
                  shown_root: Path) -> tuple[list[tuple], list[tuple[list[Job], str]]]:
  """One Batcher batch stylized: its (job, output image) pairs; or, when the call fails (too
  small, out of memory), each content's jobs with the line saying why, and no pairs."""
  import numpy as np

  jobs, imgs, codes = zip(*batch)
  style = stacked_codes(stylizer, list(codes))
  try:
    out = stylize_batch(stylizer, np.stack(imgs), style, alpha, tile)
  except Exception as e:  # One bad batch (too small, out of memory) must not stop the run.
    problem = e.problem if isinstance(e, AdainError) else one_line(e)
    return [], [([j for j in jobs if j.content == rel], f"{shown_root / rel}: {problem}")
                for rel in dict.fromkeys(j.content for j in jobs)]
  return list(zip(jobs, out)), []


def write_output(path: Path, shown: Path, img_hw3) -> str | None:
  """Writes one output by temporary name and rename, so that a killed or retried write leaves
  the file whole or absent; the error line naming it, else None."""
  from adain.media import images

  try:
    path.parent.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    return f"{shown.parent}: cannot create folder ({e.strerror or e})"
  try:
    images.save_image(path, img_hw3)
  except AdainError as e:
    return f"{shown}: {e.problem}"
  except Exception as e:  # counted and reported, not lost in a future
    return f"{shown}: {one_line(e)}"
  return None


class Run:
  """One run's shared state: counters, manifest, progress bar, and the write threads."""

  def __init__(self, options: Options, content_root: Path, out_root: Path, styles: list[Path],
               manifest: Manifest, bar):
    self.options, self.content_root, self.out_root = options, content_root, out_root
    self.styles, self.manifest, self.bar = styles, manifest, bar
    self.lock = threading.Lock()
    self.written = self.failed = 0
    self.writer = ThreadPoolExecutor(options.workers, thread_name_prefix="write")
    self.in_flight = threading.BoundedSemaphore(8 * options.workers)  # outputs waiting to be written

  def fail(self, jobs: list[Job], error: str, show: bool = True) -> None:
    """Records jobs as failed; ``show`` prints the error (once for all of them)."""
    from tqdm import tqdm

    if show:
      tqdm.write(f"error: {error}", file=sys.stderr)
    self.manifest.add([manifest_row(j, self.styles, "failed", error) for j in jobs])
    with self.lock:
      self.failed += len(jobs)
      self.bar.update(len(jobs))

  def done(self, job: Job) -> None:
    """Records a written output."""
    self.manifest.add([manifest_row(job, self.styles, "ok")])
    with self.lock:
      self.written += 1
      self.bar.update(1)

  def write(self, job: Job, img_hw3) -> None:
    self.in_flight.acquire()
    self.writer.submit(self._write, job, img_hw3).add_done_callback(lambda _: self.in_flight.release())

  def _write(self, job: Job, img_hw3) -> None:
    path = self.out_root / job.output
    error = write_output(path, path, img_hw3)
    if error:
      self.fail([job], error)
    else:
      self.done(job)

  def device_worker(self, stylizer, batches: queue.Queue) -> None:
    """Stylizes Batcher batches until it gets None."""
    while (batch := batches.get()) is not None:
      outputs, failures = stylize_group(stylizer, batch, self.options.alpha, self.options.tile, self.content_root)
      for jobs, error in failures:
        self.fail(jobs, error)
      for job, img in outputs:
        self.write(job, img)

  def close(self) -> None:
    self.writer.shutdown(wait=True)
    self.manifest.close()


def collect_codes(codes, total: int) -> dict:
  """{style index: its code (style_code) or the error line} from (index, code) pairs as they come, with a
  progress bar and each error printed."""
  from tqdm import tqdm

  found = {}
  with tqdm(total=total, unit="style", desc="styles", file=sys.stderr, disable=None) as bar:
    for s, code in codes:
      found[s] = code
      if isinstance(code, str):
        tqdm.write(f"error: {code}", file=sys.stderr)
      bar.update(1)
  return found


def encode_styles(stylizer, style_root: Path, styles: list[Path], needed: list[int], options: Options,
                  pool):
  """The codes of the styles this run uses (collect_codes), each read and encoded once."""
  load = lambda s: read_style(style_root / styles[s], style_root / styles[s], options.style_size)  # noqa: E731
  return collect_codes(((s, style_code(stylizer, img, style_root / styles[s], options.tile))
                        for s, img in _prefetch(pool, load, needed, 2 * options.workers)), len(needed))


def stylize_all(work: Run, todo: list[Job], style_root: Path) -> None:
  """Encodes the styles, then streams contents: decoded ahead on threads, grouped by size into
  batches for one thread per local device, written on threads."""
  import jax

  from adain.inference import memory
  from adain.inference.stylizer import Stylizer

  options, content_root = work.options, work.content_root
  stylizer = Stylizer.from_files(options.vgg, options.decoder, model=options.model,
                                 weights=options.weights, dtype=options.dtype)
  check_decoder(stylizer.variant, options.decoder)
  devices = jax.local_devices()
  batcher = Batcher(memory.batch_cap(options.batch_size), stylizer.net)
  with ThreadPoolExecutor(options.workers, thread_name_prefix="read") as pool:
    codes = encode_styles(stylizer, style_root, work.styles, sorted({j.style for j in todo}), options, pool)
    batches = queue.Queue(maxsize=2 * len(devices))
    workers = [threading.Thread(target=work.device_worker, name=f"device-{d.id}", daemon=True,
                                args=(stylizer if len(devices) == 1 else stylizer.on(d), batches))
               for d in devices]
    for w in workers:
      w.start()
    jobs = by_content(todo)
    load = lambda rel: read_content(content_root / rel, content_root / rel, options.content_size, options.crop)  # noqa: E731
    for rel, img in _prefetch(pool, load, list(jobs), 2 * options.workers + batcher.batch_size):
      if isinstance(img, str):
        work.fail(jobs[rel], img)
        continue
      ready, unstyled = pair_styles(jobs[rel], img, codes, content_root / rel)
      for j, error in unstyled:
        work.fail([j], error, show=False)
      for batch in batcher.add(ready):
        batches.put(batch)
    for batch in batcher.rest():
      batches.put(batch)
    for _ in workers:
      batches.put(None)
    for w in workers:
      w.join()


