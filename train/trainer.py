"""The training loop of either network (cfg.model): a pure jitted step, data parallel over a
`data` mesh axis. AdaIN trains its decoder (the paper's recipe); MicroAST all four of its parts
(its train_microAST.py's recipe); both with the frozen VGG as the loss network.

Step numbers count finished updates: the checkpoint and the metrics line of step k hold the
state after k updates and the losses of the k-th update (computed on batch k - 1). A resumed
run restores step k and goes on with update k + 1 on the very batch an uninterrupted run would
use, so no step runs twice or is skipped, and the result is bit for bit the same on CPU.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import json
import math
import os
import signal
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec
from PIL import Image
from tqdm import tqdm

from adain.models import NETWORKS, losses
from adain.models.adain import weights
from adain.errors import AdainError
from adain.files import atomic_write, temp_target
from adain.models.adain.architecture import FEATURES, MIN_SIDE, Variant
from adain.models.adain.network import AdaIN, Decoder, Encoder, concat_input
from adain.models.microast import weights as microast_weights
from adain.models.microast.network import MicroAST

CHECKPOINT_FORMAT = "adain-train/1"
# Config fields a checkpoint must agree with: they fix what its state and data positions mean.
RUN_FIELDS = ("model", "content", "style", "seed", "batch_size", "load_size", "crop_size",
              "style_layers", "fusion", "decoder_norm")


class TrainError(AdainError):
  """A run that cannot start or go on; the message says why and what to do."""


class Interrupted(Exception):
  """Stopped by a signal after saving ``step``; the same command resumes."""

  def __init__(self, step: int, signum: int):
    self.step, self.signum = step, signum
    super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}, checkpoint saved; "
                     "run the same command again to resume")


def check_config(cfg: ml_collections.ConfigDict, devices: int) -> None:
  if cfg.model not in NETWORKS:
    raise TrainError(None, f"model must be one of {NETWORKS}, got {cfg.model!r}")
  if cfg.model == "microast":
    adain_only = [f"{k} {cfg[k]!r}" for k, v in (("fusion", "adain"), ("decoder_norm", "none"),
                                                 ("alpha", 1.0), ("init_decoder", ""))
                  if cfg[k] != v]
    if adain_only:
      raise TrainError(None, f"MicroAST has no {', '.join(adain_only)} (AdaIN's fields); "
                       "start from weights with --config.init_weights=DIR")
  elif cfg.init_weights:
    raise TrainError(None, "init_weights is MicroAST's; AdaIN starts from --config.init_decoder")
  if cfg.batch_size % devices:
    raise TrainError(None, f"batch_size {cfg.batch_size} is not a multiple of the {devices} "
                     "devices that share it")
  if cfg.crop_size < MIN_SIDE or cfg.load_size < cfg.crop_size:
    raise TrainError(None, f"need {MIN_SIDE} <= crop_size <= load_size, got crop_size "
                     f"{cfg.crop_size} and load_size {cfg.load_size}")
  unknown = set(cfg.style_layers) - set(FEATURES)
  if unknown or not cfg.style_layers:
    raise TrainError(None, f"style_layers must be a non-empty subset of {FEATURES}")
  if variant_of(cfg).fusion == "concat" and cfg.alpha != 1.0:
    raise TrainError(None, "fusion 'concat' has no alpha: its decoder sees the style's features, "
                     "not an AdaIN target; leave alpha at 1")


def variant_of(cfg: ml_collections.ConfigDict) -> Variant:
  """The model variant the config trains (fields fusion, decoder_norm)."""
  try:
    return Variant(cfg.fusion, cfg.decoder_norm)
  except AdainError as e:
    raise TrainError(None, e.problem) from None


def _random_vgg(seed: int) -> dict[str, np.ndarray]:
  """He-normal VGG weights: unlike PyTorch's default init, relu4_1 does not fade to zero."""
  rng = np.random.default_rng(seed)
  return {name: (rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:])) if len(shape) == 4
                 else np.zeros(shape)).astype(np.float32)
          for name, shape in weights.VGG_SHAPES.items()}


class MicroASTTraining(nnx.Module):
  """MicroAST (``network``: all four parts, trained) beside the frozen VGG of its losses
  (``encoder``, as AdaIN's)."""

  def __init__(self, network: MicroAST, encoder: Encoder):
    self.network, self.encoder = network, encoder


def trained_part(model: AdaIN | MicroASTTraining) -> nnx.Module:
  """What the optimizer updates: AdaIN's decoder, or all of MicroAST."""
  return model.network if isinstance(model, MicroASTTraining) else model.decoder


def _vgg(cfg: ml_collections.ConfigDict) -> dict[str, np.ndarray]:
  if cfg.vgg == "random":
    vgg = _random_vgg(cfg.seed)
  elif cfg.vgg and os.path.exists(cfg.vgg):
    vgg = weights.load_weights(cfg.vgg, "vgg")
  else:
    raise TrainError(cfg.vgg or None, "the pretrained VGG is missing: download "
                     "https://github.com/naoto0804/pytorch-AdaIN/releases/download/v0.0.0/"
                     "vgg_normalised.pth to checkpoints/vgg_normalised.pth, or pass "
                     "--config.vgg=PATH (.pth, .t7 or .npz)")
  return vgg


def build_model(cfg: ml_collections.ConfigDict) -> AdaIN | MicroASTTraining:
  """The pretrained VGG from cfg.vgg, and for AdaIN a decoder from cfg.init_decoder or a seeded
  init; for MicroAST its four parts from cfg.init_weights (its published files' folder or a
  training workdir) or torch's default init from cfg.seed."""
  vgg = _vgg(cfg)
  if cfg.model == "microast":
    network = (microast_weights.model_from_state_dicts(
        microast_weights.state_dicts(cfg.init_weights, download=False)) if cfg.init_weights
        else MicroAST(rngs=nnx.Rngs(cfg.seed)))
    return MicroASTTraining(network, weights.model_from_state_dicts(vgg).encoder)
  variant = variant_of(cfg)
  if cfg.init_decoder:
    decoder = weights.load_weights(cfg.init_decoder, "decoder")
    found = weights.variant_of(decoder)
    if found != variant:
      raise TrainError(cfg.init_decoder, f"holds a decoder of variant "
                       f"{found.name!r}, but this config trains "
                       f"{variant.name!r} (fields fusion, decoder_norm)")
    return weights.model_from_state_dicts(vgg, decoder)
  model = weights.model_from_state_dicts(vgg)
  model.variant = variant
  model.decoder = Decoder(variant, rngs=nnx.Rngs(cfg.seed))
  return model


def learning_rate(cfg: ml_collections.ConfigDict, step: int) -> float:
  """train.py's adjust_learning_rate: lr / (1 + lr_decay * number of updates done)."""
  return cfg.lr / (1.0 + cfg.lr_decay * step)


# torch.optim.Adam's defaults; the learning rate is applied by the step, a runtime input, so
# that one compiled step serves any lr and schedule.
ADAM = optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8)


@dataclasses.dataclass(frozen=True)
class Recipe:
  """What the step computes, fixed at trace time (hashable: equal recipes share a compile).

  ``encoder`` is the frozen VGG, ``trained`` what the optimizer updates (trained_part);
  ``weights`` pairs each of the network's losses with its weight in the loss."""

  network: str
  encoder: nnx.GraphDef
  trained: nnx.GraphDef
  weights: tuple[tuple[str, float], ...]
  style_layers: tuple[str, ...]
  alpha: float
  dtype: Any
  fusion: str


def recipe_of(cfg: ml_collections.ConfigDict, model: AdaIN | MicroASTTraining) -> Recipe:
  weighted = (("content_loss", cfg.content_weight), ("style_loss", cfg.style_weight))
  if cfg.model == "microast":
    weighted += (("contrastive_loss", cfg.contrastive_weight),)
  return Recipe(cfg.model, nnx.graphdef(model.encoder), nnx.graphdef(trained_part(model)),
                weighted, tuple(cfg.style_layers), cfg.alpha,
                jnp.bfloat16 if cfg.bf16 else jnp.float32, cfg.fusion)


def _to(dtype, tree):
  return jax.tree.map(lambda x: x.astype(dtype), tree)


def forward(recipe: Recipe, params, encoder_params, content_u8, style_u8, batch_stats=None,
            train: bool = False):
  """(output images, {loss name: loss}, the trained part's batch norm statistics or None:
  updated in ``train``ing, else used) of the recipe's network."""
  run = _microast_forward if recipe.network == "microast" else _adain_forward
  return run(recipe, params, encoder_params, content_u8, style_u8, batch_stats, train)


def _adain_forward(recipe: Recipe, decoder_params, encoder_params, content_u8, style_u8,
                   batch_stats, train):
  """pytorch-AdaIN's net.py forward: the content loss against the AdaIN target, the style loss.

  The content loss's target is the AdaIN target for every variant: an Enc-Concat-Dec decoder
  sees the content and style features stacked instead, and is measured as the paper's model.
  """
  encoder = nnx.merge(recipe.encoder, _to(recipe.dtype, encoder_params))
  # Batch statistics as fresh variables of this trace, so that training may update them.
  stats = [] if batch_stats is None else [_to(jnp.float32, batch_stats)]
  decoder = nnx.merge(recipe.trained, _to(recipe.dtype, decoder_params), *stats)
  images = jnp.concatenate([content_u8, style_u8]).astype(recipe.dtype) / 255
  both = encoder.features(images)  # one pass for content and style: a smaller program
  n = content_u8.shape[0]
  style_feats = {k: v[n:] for k, v in both.items()}
  content_feat = both["relu4_1"][:n]
  target = losses.adain_target(content_feat, style_feats["relu4_1"], recipe.alpha)
  decoder_input = (target if recipe.fusion == "adain" else
                   concat_input(content_feat, style_feats["relu4_1"]))
  output = decoder(decoder_input.astype(recipe.dtype), train=train)
  loss_c, loss_s = losses.output_losses(encoder, output, target, style_feats, recipe.style_layers)
  return output, {"content_loss": loss_c, "style_loss": loss_s}, (
      None if batch_stats is None else nnx.state(decoder, nnx.BatchStat))


def _microast_forward(recipe: Recipe, params, encoder_params, content_u8, style_u8, batch_stats,
                      train):
  """MicroAST's Net.forward (net_microAST.py): the output at alpha 1, not clamped, cropped to
  the input; content loss = MSE of relu4_1 of output and content image; style loss as AdaIN's;
  and the style signal contrastive loss of the output's code (style encoder and modulator run
  on the output) against the batch's style codes."""
  del batch_stats, train  # no batch norm
  vgg = nnx.merge(recipe.encoder, _to(recipe.dtype, encoder_params))
  net = nnx.merge(recipe.trained, _to(recipe.dtype, params))
  n, h, w = content_u8.shape[:3]
  images = jnp.concatenate([content_u8, style_u8]).astype(recipe.dtype) / 255
  both = vgg.features(images)  # one pass for content and style, as AdaIN's
  style_code = net.encode_style(images[n:])
  output = net.generate(net.encode_content(images[:n]), style_code)[:, :h, :w]
  out_feats = vgg.features(output)
  return output, {
      "content_loss": losses.content_loss(out_feats["relu4_1"], both["relu4_1"][:n]),
      "style_loss": losses.style_loss(out_feats, {k: v[n:] for k, v in both.items()},
                                      recipe.style_layers),
      "contrastive_loss": losses.style_signal_contrastive_loss(
          net.encode_style(output).fields(), style_code.fields()),
  }, None


def train_step(state, encoder_params, content_u8, style_u8, lr, *, recipe: Recipe):
  """One Adam update of the trained part; returns the new state and the update's losses.

  A batch norm decoder's running statistics (state["batch_stats"]) are updated alongside,
  not by Adam.
  """

  def loss_fn(params):
    _, parts, stats = forward(recipe, params, encoder_params, content_u8, style_u8,
                              state.get("batch_stats"), train=True)
    loss = sum(weight * parts[name] for name, weight in recipe.weights)
    return loss, ({"loss": loss, **parts}, stats)

  grads, (metrics, stats) = jax.grad(loss_fn, has_aux=True)(state["params"])
  direction, opt_state = ADAM.update(grads, state["opt_state"])
  params = jax.tree.map(lambda p, d: p - lr * d, state["params"], direction)
  new = {"params": params, "opt_state": opt_state}
  return ({**new, "batch_stats": stats} if stats is not None else new), metrics


def sample_step(state, encoder_params, content_u8, style_u8, *, recipe: Recipe):
  """A (H, 3W, 3) uint8 strip (content | style | output) for each of the first 4 images,
  decoded as at inference (batch norm with its running statistics)."""
  c, s = content_u8[:4], style_u8[:4]
  output = forward(recipe, state["params"], encoder_params, c, s, state.get("batch_stats"))[0]
  output = jnp.round(jnp.clip(output.astype(jnp.float32), 0, 1) * 255).astype(jnp.uint8)
  return jnp.concatenate([c, s, output], axis=2)


def shardings(mesh: jax.sharding.Mesh) -> tuple[NamedSharding, NamedSharding]:
  """(replicated, split over the batch axis)."""
  return NamedSharding(mesh, PartitionSpec()), NamedSharding(mesh, PartitionSpec("data"))


@functools.cache
def jit_steps(recipe: Recipe, mesh: jax.sharding.Mesh):
  """(train step, sample step), jitted once per recipe and mesh; the state is donated."""
  repl, batch = shardings(mesh)
  step = jax.jit(functools.partial(train_step, recipe=recipe), donate_argnums=0,
                 in_shardings=(repl, repl, batch, batch, repl), out_shardings=(repl, repl))
  sample = jax.jit(functools.partial(sample_step, recipe=recipe),
                   in_shardings=(repl, repl, batch, batch), out_shardings=repl)
  return step, sample


def init_state(model: AdaIN | MicroASTTraining, mesh: jax.sharding.Mesh):
  """(train state, VGG parameters), replicated on the mesh.

  The state is {"params", "opt_state"} of the trained part, plus "batch_stats" for a batch norm
  decoder: its running statistics, replicated, donated and checkpointed with the rest.
  """
  repl, _ = shardings(mesh)
  trained = trained_part(model)
  params = nnx.state(trained, nnx.Param)
  state = {"params": params, "opt_state": ADAM.init(params)}
  stats = nnx.state(trained, nnx.BatchStat)
  if jax.tree.leaves(stats):
    state["batch_stats"] = stats
  return jax.device_put(state, repl), jax.device_put(nnx.state(model.encoder), repl)


def _host(tree):
  """A replicated tree as host NumPy arrays (works on every process of a multi-host run)."""
  return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), tree)


def exports(cfg: ml_collections.ConfigDict) -> tuple[str, ...]:
  """The weight files a workdir holds for the inference commands (``--decoder`` / ``--weights``)."""
  return tuple(microast_weights.EXPORTS.values()) if cfg.model == "microast" else ("decoder.npz",)


class Checkpoints:
  """orbax checkpoints under WORKDIR/checkpoints plus the exported weights (``exports``):
  WORKDIR/decoder.npz (AdaIN), MicroAST's four WORKDIR/microast_PART.npz."""

  def __init__(self, workdir: str, cfg: ml_collections.ConfigDict, model):
    self.workdir, self.cfg, self.model = workdir, cfg, model
    names = exports(cfg)
    for stale in glob.glob(os.path.join(workdir, ".*.tmp")):  # a killed run's write
      if temp_target(os.path.basename(stale)) in names:
        os.remove(stale)
    self.manager = ocp.CheckpointManager(
        os.path.abspath(os.path.join(workdir, "checkpoints")),
        item_handlers={"state": ocp.StandardCheckpointHandler(),
                       "meta": ocp.JsonCheckpointHandler()},
        options=ocp.CheckpointManagerOptions(max_to_keep=cfg.keep_checkpoints, create=True,
                                             cleanup_tmp_directories=True))

  def run_config(self) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v
            for k, v in self.cfg.to_dict().items() if k in RUN_FIELDS}

  def restore(self, state, positions: dict):
    """(step, state, positions) of the latest checkpoint, or step 0 and the given ones."""
    step = self.manager.latest_step()
    if step is None:
      return 0, state, positions
    where = os.path.join(self.workdir, "checkpoints", str(step))
    meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    if meta.get("format") != CHECKPOINT_FORMAT:
      raise TrainError(where, f"not an adain training checkpoint ({meta.get('format')!r})")
    # Checkpoints from before the variants were of the paper's model.
    saved = {"model": "adain", "fusion": "adain", "decoder_norm": "none", **meta["run_config"]}
    ours = self.run_config()
    diff = [f"{k}: checkpoint {saved.get(k)!r}, now {ours[k]!r}" for k in ours
            if saved.get(k) != ours[k]]
    if diff:
      raise TrainError(where, "was made with another config (" + "; ".join(diff) + "). Resume "
                       "with the same config, or start in a new --workdir")
    if len(meta["content_pos"]) != jax.process_count():
      raise TrainError(where, f"was saved by {len(meta['content_pos'])} processes, not "
                       f"{jax.process_count()}")
    want = sorted((tuple(x.shape), str(x.dtype)) for x in jax.tree.leaves(state))
    have = sorted((tuple(m.shape), str(m.dtype))
                  for m in jax.tree.leaves(self.manager.item_metadata(step)["state"]))
    if want != have:
      extra = sorted(set(have) - set(want)) or sorted(set(want) - set(have))
      raise TrainError(where, f"holds a train state of another structure ({len(have)} arrays, "
                       f"expected {len(want)}; e.g. {extra[:1]}): not this config's decoder and "
                       "optimizer. Start in a new --workdir")
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
                            state)
    try:
      restored = self.manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract)))["state"]
    except (ValueError, KeyError, TypeError) as e:
      raise TrainError(where, f"does not match this config's train state ({e})") from None
    p = jax.process_index()
    return step, restored, {"content": meta["content_pos"][p], "style": meta["style_pos"][p]}

  def save(self, step: int, state, positions: dict) -> None:
    """Saves asynchronously, and exports the weights for `python -m adain.stylize`."""
    from jax.experimental import multihost_utils

    pos = multihost_utils.process_allgather(
        np.array([positions["content"], positions["style"]], np.int64))
    pos = np.asarray(pos).reshape(-1, 2)
    meta = {"format": CHECKPOINT_FORMAT, "run_config": self.run_config(),
            "content_pos": pos[:, 0].tolist(), "style_pos": pos[:, 1].tolist()}
    self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                    meta=ocp.args.JsonSave(meta)))
    if jax.process_index() == 0:
      trained = trained_part(self.model)
      nnx.update(trained, _host(state["params"]))
      if "batch_stats" in state:
        nnx.update(trained, _host(state["batch_stats"]))
      if isinstance(self.model, MicroASTTraining):
        microast_weights.save_exports(self.workdir, self.model.network, step=step)
      else:
        weights.save_native(os.path.join(self.workdir, "decoder.npz"),
                            weights.decoder_state_dict(self.model), "decoder", step=step)

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()


class Reporter:
  """metrics.jsonl, TensorBoard scalars and sample grids (written by process 0 only)."""

  def __init__(self, workdir: str, start_step: int):
    self.workdir = workdir
    self.enabled = jax.process_index() == 0
    self.path = os.path.join(workdir, "metrics.jsonl")
    if self.enabled:
      self._truncate(start_step)
      import tensorflow as tf
      from tensorflow.core.framework import summary_pb2

      self.tf = tf
      self.writer = tf.summary.create_file_writer(os.path.join(workdir, "tensorboard"))
      # What tensorboard's tf.summary.scalar writes, without needing the tensorboard package.
      self.scalar_meta = summary_pb2.SummaryMetadata(
          plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))

  def _truncate(self, step: int) -> None:
    """Drops lines past the restored step, left by a killed run, so no step appears twice."""
    if not os.path.exists(self.path):
      return
    with open(self.path) as f:
      keep = [line for line in f if line.strip() and json.loads(line)["step"] <= step]
    with atomic_write(self.path, "w") as f:
      f.writelines(keep)

  def scalars(self, record: dict) -> None:
    if not self.enabled:
      return
    with open(self.path, "a") as f:
      f.write(json.dumps(record) + "\n")
    with self.writer.as_default(step=record["step"]):
      for k, v in record.items():
        if k != "step":
          self.tf.summary.write(k, self.tf.constant(v, self.tf.float32),
                                metadata=self.scalar_meta.SerializeToString())
    self.writer.flush()

  def grid(self, step: int, strips: np.ndarray) -> None:
    if self.enabled:
      os.makedirs(os.path.join(self.workdir, "samples"), exist_ok=True)
      Image.fromarray(np.concatenate(list(strips), axis=0)).save(
          os.path.join(self.workdir, "samples", f"step_{step:07d}.png"))

  def close(self) -> None:
    if self.enabled:
      self.writer.close()


def _compiled_together(step_fn, sample_fn, state, encoder_params, cfg, batch_sharding):
  """The steps compiled ahead, then a wait for every process at the coordinator.

  Gloo (CPU collectives) gives up on a peer that joins its first collective over 30 s late, or
  hangs: processes that compile (or start) at different speeds on a loaded machine would. The
  coordinator's barrier waits as long as it takes, so the first collective starts together.
  """
  from jax._src import distributed

  images = jax.ShapeDtypeStruct((cfg.batch_size, cfg.crop_size, cfg.crop_size, 3), np.uint8,
                                sharding=batch_sharding)
  step_fn = step_fn.lower(state, encoder_params, images, images, np.float32(0)).compile()
  sample_fn = sample_fn.lower(state, encoder_params, images, images).compile()
  distributed.global_state.client.wait_at_barrier("adain-train-compiled", 3_600_000)
  return step_fn, sample_fn


class _Signals:
  """Turns the first SIGTERM / SIGINT into a request to save and stop; a second one kills.

  With several processes, all stop at the same step (or the others would wait for the stopped
  one in the step's collectives): they agree every ``every`` steps, a tiny all-gather.
  """

  def __init__(self):
    self.received = None
    self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGTERM, signal.SIGINT)}

  def stop(self, step: int, every: int) -> bool:
    if jax.process_count() == 1:
      return self.received is not None
    if step % every:
      return False
    from jax.experimental import multihost_utils

    seen = multihost_utils.process_allgather(np.int32(self.received or 0))
    self.received = int(np.max(seen)) or None
    return self.received is not None

  def _handle(self, signum, frame):
    self.received = signum
    self.restore()

  def restore(self) -> None:
    for s, handler in self._old.items():
      signal.signal(s, handler)


def _finite_or_raise(step: int, metrics: dict, last_saved: int, workdir: str) -> dict:
  values = {k: float(v) for k, v in metrics.items()}
  if not all(math.isfinite(v) for v in values.values()):
    kept = (f"the last good checkpoint, step {last_saved}, is kept in {workdir}/checkpoints"
            if last_saved else "no checkpoint was saved")
    parts = ", ".join(f"{k.removesuffix('_loss')} {v}" for k, v in values.items() if k != "loss")
    raise TrainError(None, f"loss is {values['loss']} at step {step} ({parts}); stopped, and "
                     f"{kept}. Lower --config.lr or check the data")
  return values


def train_and_evaluate(cfg: ml_collections.ConfigDict, workdir: str) -> int:
  """Trains until cfg.max_steps or a signal; returns the last step reached (saved)."""
  devices = jax.device_count()
  check_config(cfg, devices)
  os.makedirs(workdir, exist_ok=True)
  mesh = jax.make_mesh((devices,), ("data",))
  model = build_model(cfg)
  recipe = recipe_of(cfg, model)
  state, encoder_params = init_state(model, mesh)
  processes, local_batch = jax.process_count(), cfg.batch_size // jax.process_count()
  ckpt = Checkpoints(workdir, cfg, model)
  start, state, pos = ckpt.restore(state, {"content": 0, "style": 0})
  step = start
  if step >= cfg.max_steps:
    ckpt.close()
    return step
  step_fn, sample_fn = jit_steps(recipe, mesh)
  _, batch_sharding = shardings(mesh)
  if jax.process_count() > 1:
    step_fn, sample_fn = _compiled_together(step_fn, sample_fn, state, encoder_params, cfg,
                                            batch_sharding)
  report = Reporter(workdir, start)
  from train import data  # tf.data: only the loop needs TensorFlow (train.bench runs without)

  batches = data.batches(cfg, workdir, pos["content"], pos["style"], jax.process_index(),
                         processes)
  signals = _Signals()
  bar = tqdm(total=cfg.max_steps, initial=start, desc="train", unit="step", dynamic_ncols=True,
             disable=jax.process_index() != 0)
  last_saved = start
  pending = None  # the previous step's metrics: read while the next step runs
  window = (time.perf_counter(), step)

  def finish(entry) -> None:
    nonlocal window
    s, metrics, p = entry
    values = _finite_or_raise(s, metrics, last_saved, workdir)
    bar.update(1)
    if s % cfg.log_every == 0 or s == cfg.max_steps:
      now = time.perf_counter()
      record = {"step": s, **values, "lr": learning_rate(cfg, s - 1),
                "steps_per_sec": (s - window[1]) / (now - window[0]), "devices": devices,
                # unreadable files so far: examples this process read minus those it used
                **{f"skipped_{k}": p[k] - s * local_batch for k in ("content", "style")}}
      window = (now, s)
      report.scalars(record)
      bar.set_postfix(loss=f"{values['loss']:.4g}")

  try:
    while step < cfg.max_steps and not signals.stop(step, cfg.log_every):
      b = next(batches)
      content = jax.make_array_from_process_local_data(batch_sharding, b.content)
      style = jax.make_array_from_process_local_data(batch_sharding, b.style)
      lr = np.float32(learning_rate(cfg, step))
      state, metrics = step_fn(state, encoder_params, content, style, lr)
      step += 1
      if pending:
        finish(pending)
      pos = {"content": b.next_content, "style": b.next_style}
      pending = (step, metrics, pos)
      if step % cfg.sample_every == 0:
        report.grid(step, np.asarray(sample_fn(state, encoder_params, content, style)
                                     .addressable_data(0)))
      if step % cfg.save_every == 0 or step == cfg.max_steps:
        finish(pending)
        pending = None
        ckpt.save(step, state, pos)
        last_saved = step
    if pending:
      finish(pending)
    if step != last_saved:
      ckpt.save(step, state, pos)
  finally:
    signals.restore()
    bar.close()
    ckpt.close()
    report.close()
  if signals.received is not None:
    raise Interrupted(step, signals.received)
  return step

