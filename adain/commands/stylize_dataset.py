"""python -m adain.stylize_dataset: a stylized copy of an image dataset (Stylized-ImageNet and the like).

A drop-in for bethgelab's stylize-datasets (its stylize.py): the same flags, defaults and output
layout, ``SUBDIR/{stem}-stylized-{style}{ext}`` with the content tree's folders kept. Which styles
an image gets is a pure function of (--seed, its path relative to --content-dir), so a resumed or
sharded run makes the same dataset; a re-run skips finished outputs; ``--shard I/N`` splits the
work over processes and hosts, ``--ray`` runs it on a Ray cluster (adain.pipelines.ray_engine);
OUTPUT/manifest.jsonl records every output. The work itself is adain.pipelines.datasets'.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

from adain.commands import flags
from adain.errors import AdainError
from adain.pipelines import datasets


def shard(text: str) -> tuple[int, int]:
  try:
    i, n = (int(v) for v in text.split("/"))
  except ValueError:
    raise argparse.ArgumentTypeError(f"expected I/N, e.g. 0/4, got {text!r}") from None
  if not 0 <= i < n:
    raise argparse.ArgumentTypeError(f"need 0 <= I < N, got {text}")
  return i, n


def build_parser() -> argparse.ArgumentParser:
  p = flags.Parser(prog="python -m adain.stylize_dataset", description=__doc__.split("\n")[0],
                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  p.add_argument("--content-dir", "--content_dir", dest="content_dir", required=True, metavar="DIR",
                 help="the dataset to stylize, read recursively")
  p.add_argument("--style-dir", "--style_dir", dest="style_dir", required=True, metavar="DIR",
                 help="style images, read recursively")
  p.add_argument("--output-dir", "--output_dir", dest="output_dir", default="output", metavar="DIR",
                 help="where the stylized tree goes")
  p.add_argument("--num-styles", "--num_styles", dest="num_styles", type=flags.batch, default=1, metavar="N",
                 help="stylized copies of each image, each with a different style")
  p.add_argument("--alpha", type=flags.alpha, default=1.0, metavar="A",
                 help="degree of stylization, 0 (content) to 1 (full style)")
  p.add_argument("--extensions", nargs="+", default=list(flags.IMAGE_EXTENSIONS), metavar="EXT",
                 help="extensions of the image files to read from both folders, in any case")
  p.add_argument("--content-size", "--content_size", dest="content_size", type=flags.pixels, default=0,
                 metavar="N", help="shorter side of content images; 0 keeps their size")
  p.add_argument("--style-size", "--style_size", dest="style_size", type=flags.pixels, default=512,
                 metavar="N", help="shorter side of style images; 0 keeps their size")
  p.add_argument("--crop", type=flags.pixels, default=0, metavar="N",
                 help="center-crop content images to N x N after resizing; 0: no crop")
  p.add_argument("--seed", type=int, default=0, help="seed of the style choice")
  p.add_argument("--shard", type=shard, default="0/1", metavar="I/N",
                 help="do only share I (from 0) of N; the N shares together are the whole run")
  p.add_argument("--ext", "--save_ext", dest="ext", type=lambda s: s.lstrip(".").lower(),
                 choices=("jpg", "png"),
                 help="output format (default: the content file's own extension, png for other formats)")
  p.add_argument("--batch-size", "--batch_size", dest="batch_size", type=flags.batch, metavar="B",
                 help="same-size images stylized in one call (default: 8 on a GPU or TPU, 1 on a CPU, "
                      "where batching is no faster and 1 gives adain.stylize's exact pixels)")
  p.add_argument("--workers", type=flags.batch, default=4, metavar="N",
                 help="threads decoding images, and as many writing them")
  p.add_argument("--tile", type=flags.pixels, metavar="N",
                 help="stylize in N-pixel tiles (0: never; default: only when an image would not fit)")
  p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                 help="network precision; bfloat16 is for GPUs (slower on a CPU, off parity)")
  p.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                 help="run on Ray Data: alone, a local Ray started for the run; 'auto', HOST:PORT or "
                      "ray://HOST:PORT joins a cluster (needs pip install 'adain[ray]')")
  p.add_argument("--ray-actors", "--ray_actors", dest="ray_actors", type=flags.batch, metavar="N",
                 help="with --ray: stylizing actors, each holding one Stylizer (default: one per GPU "
                      "of the cluster, or one per node without GPUs)")
  p.add_weights()
  return p


def _inputs(args, parser) -> tuple[Path, Path, Path, list[Path], list[Path]]:
  content_root, style_root, out_root = Path(args.content_dir), Path(args.style_dir), Path(args.output_dir)
  for flag, d in (("--content-dir", content_root), ("--style-dir", style_root)):
    if not d.is_dir():
      parser.error(f"{flag} {d}: not a folder")
  if out_root.exists() and not out_root.is_dir():
    parser.error(f"{out_root}: output path exists and is not a folder")
  exts = " ".join(args.extensions)
  contents = datasets.list_images(content_root, args.extensions, out_root.resolve())
  if not contents:
    parser.error(f"{content_root}: no images with extensions {exts} (any case) in this folder tree")
  found = datasets.list_images(style_root, args.extensions)
  if not found:
    parser.error(f"{style_root}: no images with extensions {exts} (any case) in this folder tree")
  styles = list({s.stem: s for s in reversed(found)}.values())[::-1]  # the first of each name
  if len(styles) < len(found):
    print(f"warning: {len(found) - len(styles)} style image(s) have the same name as another "
          "(outputs are named by the style's name) and are not used", file=sys.stderr)
  if args.num_styles > len(styles):
    parser.error(f"--num-styles {args.num_styles} is more than the {len(styles)} style images")
  return content_root, style_root, out_root, contents, styles


def run(args, parser) -> int:
  """Stylizes this shard's missing outputs; returns the process exit status."""
  from tqdm import tqdm

  start = time.perf_counter()
  options = datasets.Options(**{f.name: getattr(args, f.name) for f in dataclasses.fields(datasets.Options)})
  stylize_all = datasets.stylize_all
  if args.ray is None:
    if args.ray_actors is not None:
      parser.error("--ray-actors is for --ray runs")
  else:
    if args.shard != (0, 1):
      parser.error("--shard and --ray do not go together: a Ray run spreads the work over its cluster itself")
    if not args.ray:
      os.environ.update({k: os.environ.get(k, v) for k, v in datasets.LOCAL_RAY_ENV.items()})
    try:
      from adain.pipelines import ray_engine
    except ImportError as e:
      if e.name is None or e.name.partition(".")[0] not in ("ray", "pyarrow"):
        raise
      print("error: --ray needs Ray Data: pip install 'adain[ray]'", file=sys.stderr)
      return 1
    stylize_all = ray_engine.stylize_all
  content_root, style_root, out_root, contents, styles = _inputs(args, parser)
  jobs = datasets.plan(contents, styles, options)
  try:
    out_root.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    parser.error(f"{out_root}: cannot create output folder ({e.strerror})")
  manifest_file = datasets.manifest_path(out_root, args.shard)
  done = datasets.scan_outputs(out_root, jobs, manifest_file)
  todo = [j for j in jobs if j not in done]
  i, n = args.shard
  print(f"{len(contents)} content images, {len(styles)} styles; shard {i}/{n}: {len(jobs)} outputs, "
        f"{len(done)} already done", file=sys.stderr)
  manifest = datasets.Manifest(manifest_file, [datasets.manifest_row(j, styles, "ok") for j in jobs if j in done])
  with tqdm(total=len(todo), unit="image", file=sys.stderr, disable=None, smoothing=0.05) as bar:
    work = datasets.Run(options, content_root, out_root, styles, manifest, bar)
    try:
      if todo:
        stylize_all(work, todo, style_root)
    except AdainError as e:  # the weights
      print(f"error: {e}", file=sys.stderr)
      return 1
    finally:
      work.close()
  elapsed = time.perf_counter() - start
  written, failed = work.written, work.failed
  rate = f" ({written / elapsed:.2f} images/s)" if written else ""
  print(f"wrote {written} image(s) to {out_root}/ in {elapsed:.1f} s{rate}, skipped {len(done)} already "
        f"done, {failed} failed; manifest {manifest_file}", file=sys.stderr)
  return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
  return build_parser().main(run, argv)


def entry() -> None:
  """``python -m adain.stylize_dataset``: the process set up (adain.runtime), then the command."""
  from adain import runtime

  runtime.set_up("adain.stylize_dataset")
  sys.exit(main())
