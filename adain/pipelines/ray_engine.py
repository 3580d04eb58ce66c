"""python -m adain.stylize_dataset --ray: the one-host run's jobs as a Ray Data pipeline.

The driver lists the trees, plans the jobs, keeps the manifest, the progress bar and the summary
as on one host (adain.stylize_dataset.run); the workers run the one-host run's per-image
functions (adain.stylize_dataset: read_style, style_code, read_content, pair_styles, Batcher,
stylize_group, write_output). Stages:

- styles: each style image the run needs is read and encoded once in a pool of actors; the codes
  go to the driver and into the object store once, as one object that every stylizing actor gets;
- contents: read and resized in CPU tasks;
- stylization: a pool of actors, each holding one Stylizer built from weights the driver loaded
  once and put in the object store: one actor per GPU (one GPU each) where the cluster has GPUs,
  else one per node (reserving no CPU: XLA spreads it over the node's cores), or --ray-actors N;
- writing: CPU tasks, by temporary name and rename.

Faults: Ray Data restarts a lost actor (max_restarts=-1) and retries its batch (max_task_retries=-1)
by default, and retries a lost task; every stage is a function of its input, and a retried write
renames the same bytes into place, so a retry changes nothing. Temporary files of writes killed
mid-way are deleted at the end. Ray is imported only here.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import ray
import ray.data

from adain.errors import AdainError, one_line
from adain.pipelines import datasets as sd
from adain.pipelines.datasets import Job, Options

NO_IMAGE = np.zeros((0, 0, 3), np.float32)  # the image column's value in a row that has an error
NO_CODE = np.zeros((0, 0), np.float32)


def connect(address: str) -> None:
  """Joins the cluster at ``address`` ('auto', HOST:PORT, ray://HOST:PORT), or with '' starts a
  local Ray for the run, on 127.0.0.1 without dashboard or usage reports (adain.pipelines
  .datasets.LOCAL_RAY_ENV, set before Ray is imported). Ray's own logs stay in its session folder, so that
  the output is the one-host run's."""
  quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
  try:
    if address:
      ray.init(address=address, **quiet)
    else:
      ray.init(address="local", include_dashboard=False, **quiet)  # with sd.LOCAL_RAY_ENV
  except (ConnectionError, RuntimeError, ValueError) as e:
    raise AdainError(None, f"--ray {address or '(local)'}: cannot start or join Ray ({one_line(e)})") from None
  ctx = ray.data.DataContext.get_current()
  ctx.enable_progress_bars = False  # the driver's own bar counts images
  ctx.print_on_execution_start = False
  logging.getLogger("ray.data").setLevel(logging.ERROR)


def _stylizer(weights, dtype: str):
  """A Stylizer on the driver's (spec, arrays) (adain.models.read_weights), from the object store."""
  from adain.inference.stylizer import Stylizer

  return Stylizer.from_arrays(*ray.get(weights), dtype)


class _EncodeStyles:
  """Actor: style images read and encoded (read_style, style_code); a failed one has its error
  line and an empty code."""

  def __init__(self, weights, options: Options):
    self.stylizer, self.options = _stylizer(weights, options.dtype), options

  def __call__(self, batch: dict) -> dict:
    codes = [sd.style_code(self.stylizer, sd.read_style(Path(p), Path(s), self.options.style_size), Path(s),
                           self.options.tile) for p, s in zip(batch["path"], batch["shown"])]
    failed = [isinstance(c, str) for c in codes]
    return {"style": batch["style"],
            "code": [NO_CODE if bad else c for c, bad in zip(codes, failed)],
            "error": [c if bad else "" for c, bad in zip(codes, failed)]}


def _read(row: dict, real: Path, shown: Path, size: int, crop: int) -> dict:
  """Task: one content image (read_content), or its error line."""
  img = sd.read_content(real / row["content"], shown / row["content"], size, crop)
  error = isinstance(img, str)
  return {**row, "image": NO_IMAGE if error else img, "error": img if error else ""}


class _Stylize:
  """Actor: one Stylizer; a batch of content rows in, one row per job out (its image, or its
  error line, ``show`` on the first row of each error, which the driver prints once)."""

  def __init__(self, weights, codes, options: Options, shown_content: Path):
    from adain.inference import memory

    self.stylizer, self.options, self.shown = _stylizer(weights, options.dtype), options, shown_content
    self.codes = ray.get(codes)
    self.batch_size = memory.batch_cap(options.batch_size)

  def __call__(self, batch: dict) -> dict:
    out = {k: [] for k in ("content", "style", "output", "image", "error", "show")}

    def add(jobs, images=None, error="", show=False):
      for i, j in enumerate(jobs):
        out["content"].append(j.content.as_posix())
        out["style"].append(j.style)
        out["output"].append(j.output.as_posix())
        out["image"].append(NO_IMAGE if images is None else images[i])
        out["error"].append(error)
        out["show"].append(show and i == 0)

    def stylize(batches):
      for b in batches:
        outputs, failures = sd.stylize_group(self.stylizer, b, self.options.alpha, self.options.tile, self.shown)
        for jobs, error in failures:
          add(jobs, error=error, show=True)
        if outputs:
          add([j for j, _ in outputs], [img for _, img in outputs])

    batcher = sd.Batcher(self.batch_size, self.stylizer.net)
    for content, styles, outputs, img, error in zip(batch["content"], batch["style"], batch["output"],
                                                     batch["image"], batch["error"]):
      jobs = [Job(Path(content), int(s), Path(o)) for s, o in zip(styles, outputs)]
      if error:
        add(jobs, error=error, show=True)
        continue
      ready, unstyled = sd.pair_styles(jobs, img, self.codes, self.shown / content)
      for j, e in unstyled:
        add([j], error=e)
      stylize(batcher.add(ready))
    stylize(batcher.rest())
    return out


def _write_row(row: dict, real: Path, shown: Path) -> dict:
  """Task: one output written (write_output); the row without its image, with any error line."""
  image = row.pop("image")
  if not row["error"]:
    error = sd.write_output(real / row["output"], shown / row["output"], image)
    if error:
      row.update(error=error, show=True)
  return row


def _absolute(folder: Path) -> Path:
  """The folder as workers must open it: they do not run in the driver's folder."""
  return Path(os.path.abspath(folder))


def stylize_all(work: sd.Run, todo: list[Job], style_root: Path) -> None:
  """adain.stylize_dataset._stylize_all on Ray: the same outputs, rows and progress."""
  from adain.inference import memory
  from adain.models import read_weights

  options, content_root, out_root = work.options, work.content_root, work.out_root
  spec, arrays = read_weights(options.model, options.vgg, options.decoder, options.weights)
  sd.check_decoder(spec, options.decoder)
  connect(options.ray)
  try:
    weights = ray.put((spec, arrays))
    gpus = int(ray.cluster_resources().get("GPU", 0))
    actors = options.ray_actors or gpus or sum(n["Alive"] for n in ray.nodes())
    # One GPU each where there are GPUs; on CPUs an actor's XLA uses all of its node's cores.
    resources = {"num_gpus": 1} if gpus else {"num_cpus": 0}
    pool = ray.data.ActorPoolStrategy(size=actors)

    needed = sorted({j.style for j in todo})
    styles = ray.data.from_items([{"style": s, "path": str(_absolute(style_root) / work.styles[s]),
                                   "shown": str(style_root / work.styles[s])} for s in needed])
    styles = styles.map_batches(_EncodeStyles, batch_size=1, compute=ray.data.ActorPoolStrategy(
        size=min(actors, len(needed))), fn_constructor_kwargs={"weights": weights, "options": options},
        **resources)
    codes = sd.collect_codes(((int(r["style"]), r["error"] or r["code"])
                              for r in styles.iter_rows()), len(needed))

    items = [{"content": rel.as_posix(), "style": [j.style for j in jobs],
              "output": [j.output.as_posix() for j in jobs]} for rel, jobs in sd.by_content(todo).items()]
    ds = (ray.data.from_items(items)
          .map(_read, fn_kwargs={"real": _absolute(content_root), "shown": content_root,
                                 "size": options.content_size, "crop": options.crop})
          .map_batches(_Stylize, batch_size=options.batch_size or (memory.MAX_BATCH if gpus else 1), compute=pool,
                       fn_constructor_kwargs={"weights": weights, "codes": ray.put(codes), "options": options,
                                              "shown_content": content_root}, **resources)
          .map(_write_row, fn_kwargs={"real": _absolute(out_root), "shown": out_root}))
    for row in ds.iter_rows():
      job = Job(Path(row["content"]), int(row["style"]), Path(row["output"]))
      if row["error"]:
        work.fail([job], row["error"], show=bool(row["show"]))
      else:
        work.done(job)
    sd.scan_outputs(out_root, todo, sd.manifest_path(out_root, options.shard))  # temporaries of killed writes
  finally:
    ray.shutdown()
