"""python -m train.evaluate: the paper's content and style losses of models, as its Fig. 3 / 6.

Models: AdaIN decoders (any variant) and MicroAST networks side by side, each measured the same
way. For every model and every content x style pair: the output image (clipped to [0, 1]) and
the training losses of it: content loss = MSE(relu4_1(output), AdaIN(f(c), f(s))) at alpha 1,
style loss = sum over relu1_1..relu4_1 of MSE(channel means) + MSE(channel stds) of output and
style (the paper's measure for every model, so that the numbers compare); plus each model's
parameter count and its seconds per image at each of --time-sizes. Writes results.json,
results.md, losses.png and grid_NAME.jpg to --output.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from adain.commands import flags
from adain.models import losses
from adain.errors import AdainError
from adain.files import atomic_write
from train.plot import named, pyplot, save_figure

OPTIMIZE_LR = 0.02  # Adam on pixels in [0, 1]
STYLE_WEIGHT = 10.0  # the training loss's weight (train/configs/default.py), for `optimize`
CELL = 128  # grid cell side in pixels


def build_parser() -> argparse.ArgumentParser:
  p = flags.Parser(prog="python -m train.evaluate", description=__doc__.split("\n")[0],
                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  p.add_argument("--decoder", action="append", default=[], metavar="[NAME=]FILE_OR_DIR",
                 help="an AdaIN decoder (.npz/.pth/.t7) or a training workdir of either network; "
                      "repeat for several; named by its workdir or file unless NAME= is given")
  p.add_argument("--microast", action="append", default=[], metavar="[NAME=]DIR",
                 help="a MicroAST weights folder (its four published files, or a training "
                      "workdir); repeatable")
  p.add_weights(decoder=False)
  p.add_argument("--content", required=True, metavar="DIR", help="folder of content images")
  p.add_argument("--style", required=True, metavar="DIR", help="folder of style images")
  p.add_argument("--num-contents", type=flags.pixels, default=50, metavar="N",
                 help="the first N content images (sorted by name; 0: all)")
  p.add_argument("--num-styles", type=flags.pixels, default=10, metavar="N",
                 help="the first N style images (sorted by name; 0: all)")
  p.add_argument("--content-size", type=flags.pixels, default=512, metavar="N",
                 help="shorter side of the content images; 0 keeps their size")
  p.add_argument("--style-size", type=flags.pixels, default=512, metavar="N",
                 help="shorter side of the style images; 0 keeps their size")
  p.add_argument("--output", default="evaluation", metavar="DIR", help="output folder")
  p.add_argument("--baselines", action="store_true",
                 help="add rows `content` (the content image as output) and `optimize` (Gatys-"
                      "style optimization of the image from the content, same weighted loss)")
  p.add_argument("--optimize-steps", type=flags.pixels, default=200, metavar="N",
                 help="Adam steps of the `optimize` baseline")
  p.add_argument("--time-sizes", type=_sizes, default=(256, 512, 1024), metavar="N[,N...]",
                 help="time each model on the first content image at these shorter sides")
  return p


def _sizes(text: str) -> tuple[int, ...]:
  return tuple(flags.pixels(t) for t in text.split(",") if t)


# --- The measurements: jitted per input shape, on the frozen VGG's encoder. ---

@functools.partial(jax.jit, static_argnums=0)
def _features(graphdef, state, images_bhwc):
  return nnx.merge(graphdef, state).features(images_bhwc)


# The training losses of an output's features: a small program per shape; the encoder passes
# are compiled once per image size (_features).
_losses = jax.jit(losses.feature_losses)


_target = jax.jit(lambda content_features, style_features: losses.adain_target(
    content_features["relu4_1"], style_features["relu4_1"]))


@functools.partial(jax.jit, static_argnums=(0, 5))
def _optimize(graphdef, state, content_bhwc, target, style_features, steps: int):
  """Gatys et al.'s alternative to a decoder: the image itself minimises the training loss
  (content + 10 * style, the same losses), by Adam from the content image, kept in [0, 1]."""
  import optax

  encoder = nnx.merge(graphdef, state)
  adam = optax.adam(OPTIMIZE_LR)

  def loss(x):
    loss_c, loss_s = losses.output_losses(encoder, x, target, style_features)
    return loss_c + STYLE_WEIGHT * loss_s

  def step(_, carry):
    x, opt_state = carry
    updates, opt_state = adam.update(jax.grad(loss)(x), opt_state)
    return jnp.clip(optax.apply_updates(x, updates), 0.0, 1.0), opt_state

  return jax.lax.fori_loop(0, steps, step, (content_bhwc, adam.init(content_bhwc)))[0]


class Measure:
  """The frozen VGG of the losses: features and the two losses of any output image."""

  def __init__(self, vgg_state_dict):
    from adain.models.adain.weights import model_from_state_dicts

    self.graphdef, self.state = nnx.split(model_from_state_dicts(vgg_state_dict).encoder)

  def features(self, img_hw3: np.ndarray) -> dict:
    return _features(self.graphdef, self.state, np.asarray(img_hw3, np.float32)[None])

  def losses(self, output_hw3: np.ndarray, target, style_features) -> tuple[float, float]:
    loss_c, loss_s = _losses(self.features(output_hw3), target, style_features)
    return float(loss_c), float(loss_s)

  def optimize(self, content_hw3: np.ndarray, target, style_features, steps: int) -> np.ndarray:
    out = _optimize(self.graphdef, self.state, np.asarray(content_hw3, np.float32)[None], target,
                    style_features, steps)
    return np.asarray(out[0])


# --- Reports. ---

def _thumb(img_hw3: np.ndarray) -> np.ndarray:
  """An image scaled to fit a CELL x CELL white square (uint8)."""
  from PIL import Image

  u8 = np.round(np.clip(img_hw3, 0, 1) * 255).astype(np.uint8)
  scale = CELL / max(u8.shape[:2])
  h, w = (max(1, min(CELL, round(n * scale))) for n in u8.shape[:2])
  im = Image.fromarray(u8).resize((w, h), Image.Resampling.LANCZOS)
  cell = np.full((CELL, CELL, 3), 255, np.uint8)
  y, x = (CELL - h) // 2, (CELL - w) // 2
  cell[y:y + h, x:x + w] = np.asarray(im)
  return cell


def _grid(path: Path, style_thumbs: list, content_thumbs: list, cells: dict) -> None:
  """Contents down, styles across, the styles in the first row and the contents in the first
  column; a pair that was not stylized stays white."""
  from adain.media import images

  rows, cols = len(content_thumbs) + 1, len(style_thumbs) + 1
  canvas = np.full((rows * CELL, cols * CELL, 3), 255, np.uint8)
  for j, t in enumerate(style_thumbs):
    canvas[:CELL, (j + 1) * CELL:(j + 2) * CELL] = t
  for i, t in enumerate(content_thumbs):
    canvas[(i + 1) * CELL:(i + 2) * CELL, :CELL] = t
  for (i, j), t in cells.items():
    canvas[(i + 1) * CELL:(i + 2) * CELL, (j + 1) * CELL:(j + 2) * CELL] = t
  images.save_image(path, canvas.astype(np.float32) / 255)


def _write_text(path: Path, text: str) -> None:
  """Writes a report file through a temporary name, as images are written."""
  with atomic_write(path, "w") as f:
    f.write(text)


def time_sizes(stylizer, content: Path, style, sizes, repeats: int = 3) -> dict:
  """{side: median seconds of one stylization} of the content image at each shorter side (after
  a warm-up call that compiles)."""
  from adain.media import images

  out = {}
  for side in sizes:
    img = images.load_image(content, side)
    stylizer.generate(img, style)
    times = []
    for _ in range(repeats):
      t0 = time.perf_counter()
      stylizer.generate(img, style)
      times.append(time.perf_counter() - t0)
    out[str(side)] = float(np.median(times))
  return out


def summarize(pairs: list[dict], seconds: list[float]) -> dict:
  c = np.array([p["content_loss"] for p in pairs])
  s = np.array([p["style_loss"] for p in pairs])
  return {"content_loss": float(c.mean()), "content_loss_std": float(c.std()),
          "style_loss": float(s.mean()), "style_loss_std": float(s.std()),
          "seconds_per_image": float(np.median(seconds)) if seconds else 0.0,
          "pairs": pairs}


def write_markdown(path: Path, results: dict) -> None:
  sizes = results["protocol"]["time_sizes"]
  lines = ["| model | variant | parameters | content loss | style loss | s / image | "
           + "".join(f"s at {n} px | " for n in sizes) + "pairs |",
           "| --- " * (7 + len(sizes)) + "|"]
  for name, r in results["models"].items():
    timed = "".join(f"{r['seconds_at'][str(n)]:.3g} | " if r["seconds_at"] else "- | "
                    for n in sizes)
    lines.append(f"| {name} | {r['variant']} | {r['parameters'] or '-'}"
                 f" | {r['content_loss']:.4g} ± {r['content_loss_std']:.2g}"
                 f" | {r['style_loss']:.4g} ± {r['style_loss_std']:.2g}"
                 f" | {r['seconds_per_image']:.3g} | {timed}{len(r['pairs'])} |")
  p = results["protocol"]
  lines += ["", f"{p['styles']} style(s) x {p['contents']} content(s), content size "
            f"{p['content_size'] or 'original'}, style size {p['style_size'] or 'original'}; "
            "mean ± std over the pairs; seconds per image: median time of one stylization "
            "(style encoded once per style), also at each timed shorter side on the first "
            "content; parameters: all the network needs to stylize (AdaIN's VGG to relu4_1 and "
            "decoder, MicroAST's four parts)."]
  if results["skipped"]:
    lines.append(f"Skipped (unreadable): {', '.join(s['file'] for s in results['skipped'])}.")
  _write_text(path, "\n".join(lines) + "\n")


def plot_losses(path: Path, results: dict) -> None:
  """Content against style loss: each pair as a faint dot, each model's mean with its std."""
  plt = pyplot()
  fig, ax = plt.subplots(figsize=(6, 4.5))
  for i, (name, r) in enumerate(results["models"].items()):
    color = f"C{i % 10}"
    ax.scatter([p["content_loss"] for p in r["pairs"]], [p["style_loss"] for p in r["pairs"]],
               s=8, alpha=0.25, color=color)
    ax.errorbar(r["content_loss"], r["style_loss"], xerr=r["content_loss_std"],
                yerr=r["style_loss_std"], fmt="o", color=color, capsize=3, label=name)
  values = [v for r in results["models"].values() for p in r["pairs"]
            for v in (p["content_loss"], p["style_loss"])]
  if values and min(values) > 0:
    ax.set_xscale("log")
    ax.set_yscale("log")
  ax.set_xlabel("content loss")
  ax.set_ylabel("style loss")
  ax.grid(True, which="both", alpha=0.3)
  ax.legend()
  save_figure(fig, path)


# --- The run. ---

def _is_microast_workdir(path: str) -> bool:
  from adain.models.microast.weights import EXPORTS

  return all((Path(path) / name).is_file() for name in EXPORTS.values())


def _load_models(args, parser, vgg) -> dict:
  """{name: (path, Stylizer)} of the --decoder and --microast flags, in their order."""
  from adain.inference.stylizer import Stylizer
  from adain.models.adain import weights
  from adain.models.microast import weights as microast_weights
  from adain.models.microast.architecture import Spec

  models = {}
  specs = [(s, False) for s in args.decoder] + [(s, True) for s in args.microast]
  for spec, is_microast in specs:
    name, path = named(spec)
    if name in models or (args.baselines and name in ("content", "optimize")):
      parser.error(f"two models are named {name!r}: name them with --decoder NAME=PATH")
    if is_microast or _is_microast_workdir(path):
      arrays = microast_weights.model_arrays(microast_weights.state_dicts(path, download=False))
      models[name] = (path, Stylizer.from_arrays(Spec(), arrays))
    else:
      decoder = weights.load_weights(path, "decoder")
      models[name] = (path, Stylizer.from_arrays(*weights.model_arrays(vgg, decoder)))
  return models


def parameters(stylizer) -> int:
  return int(sum(np.size(a) for a in stylizer.params.arrays.values()))


def run(args, parser) -> int:
  from tqdm import tqdm

  from adain.media import images
  from adain.models.adain.weights import resolve_weights

  if not args.decoder and not args.microast and not args.baselines:
    parser.error("nothing to evaluate: give --decoder / --microast (repeatable) and/or --baselines")
  contents = parser.files_in(args.content)[:args.num_contents or None]
  styles = parser.files_in(args.style)[:args.num_styles or None]
  out_dir = Path(args.output)
  if out_dir.exists() and not out_dir.is_dir():
    parser.error(f"{out_dir}: output path exists and is not a folder")
  start = time.perf_counter()
  try:
    vgg = resolve_weights("vgg", args.vgg)
    models = _load_models(args, parser, vgg)
  except AdainError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  measure = Measure(vgg)
  rows = list(models) + (["content", "optimize"] if args.baselines else [])
  skipped = []

  def skip(path: Path, e: AdainError) -> None:
    skipped.append({"file": str(path), "error": e.problem})
    tqdm.write(f"error: {e}", file=sys.stderr)

  style_inputs = {}  # name -> (features, thumbnail, {model: encoded style})
  for s in styles:
    try:
      img = images.load_image(s, args.style_size)
      style_inputs[s] = (measure.features(img), _thumb(img),
                         {name: m.encode_style(img) for name, (_, m) in models.items()})
    except AdainError as e:
      skip(s, e)
  if not style_inputs:
    print(f"error: none of the {len(styles)} style image(s) could be read", file=sys.stderr)
    return 1

  pairs = {name: [] for name in rows}
  seconds = {name: [] for name in rows if name != "content"}  # the content row costs nothing
  cells = {name: {} for name in rows}
  content_thumbs = []
  with tqdm(total=len(contents) * len(style_inputs), unit="pair", file=sys.stderr,
            disable=None, desc="evaluate") as bar:
    for c in contents:
      try:
        content = images.load_image(c, args.content_size)
        content_features = measure.features(content)
      except AdainError as e:
        skip(c, e)
        bar.update(len(style_inputs))
        continue
      i = len(content_thumbs)
      if not i:
        first_content = c
      content_thumbs.append(_thumb(content))
      for j, (s, (style_features, _, encoded)) in enumerate(style_inputs.items()):
        target = _target(content_features, style_features)
        for name in rows:
          if name == "content":  # the content image as output: its features and thumbnail are known
            loss_c, loss_s = (float(v) for v in _losses(content_features, target, style_features))
            cells[name][i, j] = content_thumbs[i]
          else:
            t0 = time.perf_counter()
            out = (measure.optimize(content, target, style_features, args.optimize_steps)
                   if name == "optimize" else models[name][1].generate(content, encoded[name]))
            seconds[name].append(time.perf_counter() - t0)
            out = np.clip(out, 0.0, 1.0)
            loss_c, loss_s = measure.losses(out, target, style_features)
            cells[name][i, j] = _thumb(out)
          pairs[name].append({"content": c.name, "style": s.name, "content_loss": loss_c,
                              "style_loss": loss_s})
        bar.update(1)
  if not content_thumbs:
    print(f"error: none of the {len(contents)} content image(s) could be read", file=sys.stderr)
    return 1

  first_style = next(iter(style_inputs.values()))[2]
  seconds_at = {name: time_sizes(m, first_content, first_style[name], args.time_sizes)
                for name, (_, m) in models.items()}
  results = {
      "protocol": {"content_dir": args.content, "style_dir": args.style,
                   "contents": len(content_thumbs), "styles": len(style_inputs),
                   "content_size": args.content_size, "style_size": args.style_size,
                   "optimize_steps": args.optimize_steps if args.baselines else None,
                   "time_sizes": list(args.time_sizes)},
      "skipped": skipped,
      "models": {name: {"variant": models[name][1].variant.name if name in models else "baseline",
                        "decoder": models[name][0] if name in models else None,
                        "parameters": parameters(models[name][1]) if name in models else None,
                        "seconds_at": seconds_at.get(name, {}),
                        **summarize(pairs[name], seconds.get(name, []))}
                 for name in rows},
  }
  out_dir.mkdir(parents=True, exist_ok=True)
  _write_text(out_dir / "results.json", json.dumps(results, indent=1) + "\n")
  write_markdown(out_dir / "results.md", results)
  style_thumbs = [v[1] for v in style_inputs.values()]
  for name in rows:
    _grid(out_dir / f"grid_{name}.jpg", style_thumbs, content_thumbs, cells[name])
  try:
    plot_losses(out_dir / "losses.png", results)
  except AdainError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  n_pairs = len(content_thumbs) * len(style_inputs)
  print(f"evaluated {len(rows)} model(s) on {n_pairs} pair(s) in {time.perf_counter() - start:.1f} s"
        f"; wrote {out_dir}/results.json, results.md, losses.png and {len(rows)} grid(s)"
        + (f"; {len(skipped)} unreadable image(s) skipped" if skipped else ""), file=sys.stderr)
  return 0


def main(argv: list[str] | None = None) -> int:
  return build_parser().main(run, argv)


if __name__ == "__main__":
  sys.exit(main())
