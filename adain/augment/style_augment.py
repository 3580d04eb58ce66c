"""StyleAugment: training batches stylized on the fly, a pure function of a PRNG key.

Everything here traces: ``aug(key, images_bhw3)`` runs inside a user's jitted train step, with
the images sharded over the batch (NamedSharding) like the rest of the step. The augmenter is a
pytree (the network's weights, the style bank and its fitted distribution are its leaves;
``p``, the alpha range, the sampling and mixing are static), so it can be passed to a jitted
function or closed over.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from adain.errors import AdainError
from adain.models import load_code

SAMPLING = ("bank", "gaussian")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Draw:
  """What ``StyleAugment.sample`` drew for a batch of B images: ``applied`` (B,) bool, whether
  each image is stylized; ``alpha`` (B,) float32; ``code``, one style code per image (the
  network's code type: ``draw.code[i:i+1]`` is image i's, as a StyleCode is indexed)."""

  applied: jax.Array
  alpha: jax.Array
  code: Any

  def __len__(self) -> int:
    return self.applied.shape[0]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Gaussian:
  """A normal distribution over style codes flattened to vectors (fields side by side).

  The code's positive fields (its stds, ``POSITIVE``) are drawn as exp of the normal, the others
  as the normal itself, with ``mean`` and the covariance ``factor @ factor.T`` chosen so that
  the codes drawn have the bank's mean and covariance (``fit_gaussian``): every std drawn is
  positive, as style-augmentation's embeddings are drawn from a normal fitted to a dataset's.
  """

  mean: jax.Array  # (D,)
  factor: jax.Array  # (D, K): K independent directions, K < bank size
  positive: jax.Array  # (D,) bool

  def draw(self, key: jax.Array, n: int) -> jax.Array:
    """(n, D) flattened codes."""
    z = self.mean + jax.random.normal(key, (n, self.factor.shape[1])) @ self.factor.T
    return jnp.where(self.positive, jnp.exp(z), z)


def flatten_codes(codes) -> tuple[np.ndarray, np.ndarray]:
  """A batch of codes as (N, D) float64 vectors, and which of the D entries are positive."""
  names = [f.name for f in dataclasses.fields(codes)]
  arrays = [np.asarray(getattr(codes, n), np.float64) for n in names]
  positive = np.concatenate([np.full(a.shape[1], n in type(codes).POSITIVE) for n, a in
                             zip(names, arrays)])
  return np.concatenate(arrays, axis=1), positive


def unflatten_codes(like, x_nd: jax.Array):
  """(N, D) vectors as codes of ``like``'s type (the inverse of ``flatten_codes``)."""
  names = [f.name for f in dataclasses.fields(like)]
  sizes = np.cumsum([getattr(like, n).shape[1] for n in names])[:-1]
  return type(like)(*jnp.split(x_nd, sizes, axis=1))


def fit_gaussian(bank) -> Gaussian:
  """The normal, with its positive entries exponentiated, whose draws have the bank's mean m and
  covariance C exactly (moment matching, float64).

  With s = m on positive entries and 1 elsewhere and r = C / (s s^T), the normal's covariance is
  log(1 + r) between two positive entries (log-normal moments) and r otherwise (Stein's lemma
  for one positive and one plain entry), its mean log m - var / 2 on positive entries and m
  elsewhere. A small bank's covariance can come out slightly indefinite: negative eigenvalues
  are dropped.
  """
  x, positive = flatten_codes(bank)
  m = x.mean(axis=0)
  c = np.cov(x, rowvar=False) if len(x) > 1 else np.zeros((x.shape[1],) * 2)
  s = np.where(positive, m, 1.0)
  r = c / np.outer(s, s)
  both = np.outer(positive, positive)
  sigma = np.where(both, np.log1p(np.where(both, r, 0.0)), r)
  mean = np.where(positive, np.log(np.where(positive, m, 1.0)) - np.diag(sigma) / 2, m)
  lam, v = np.linalg.eigh(sigma)
  keep = lam > max(lam.max(), 0.0) * 1e-10
  factor = v[:, keep] * np.sqrt(lam[keep])
  return Gaussian(jnp.asarray(mean, jnp.float32), jnp.asarray(factor, jnp.float32),
                  jnp.asarray(positive))


@jax.tree_util.register_pytree_node_class
class StyleAugment:
  """Stylizes each image of a batch with probability ``p``, with a style drawn from a bank.

  ``stylizer``: an adain.Stylizer of either network (its weights and dtype). ``styles``: the
  bank, style codes of that network, as a file (``python -m adain.encode_style --style-dir DIR
  --output bank.npz``) or in memory (``StyleCode.concat`` of ``encode_style``'s).
  ``alpha=(lo, hi)``: each stylized image's alpha, uniform in the range. ``sampling``: "bank"
  picks a bank code per image; "gaussian" draws codes from a normal fitted to the bank
  (``fit_gaussian``), styles the bank never held. ``mix``: with "bank", the probability that an
  image's code is a blend of two different bank codes (weight uniform in [0, 1]).

  ``aug(key, images_bhw3)``: float images in [0, 1] (B, H, W, 3) of any size the network
  takes, stylized images clipped to [0, 1] in the same dtype; images not chosen come back
  unchanged, bit for bit. It equals ``aug.apply(aug.sample(key, B), images)``.
  """

  def __init__(self, stylizer, styles, *, p: float = 0.5, alpha: tuple[float, float] = (0.0, 1.0),
               sampling: str = "bank", mix: float = 0.0):
    if stylizer.concat:
      raise AdainError(None, "an Enc-Concat-Dec (concat) decoder has no style codes to augment with")
    lo, hi = (float(a) for a in alpha)
    if not 0.0 <= p <= 1.0 or not 0.0 <= lo <= hi <= 1.0 or not 0.0 <= mix <= 1.0:
      raise AdainError(None, f"StyleAugment needs 0 <= p <= 1, 0 <= alpha[0] <= alpha[1] <= 1 and "
                       f"0 <= mix <= 1; got p={p}, alpha={alpha}, mix={mix}")
    if sampling not in SAMPLING:
      raise AdainError(None, f"sampling must be one of {SAMPLING}, not {sampling!r}")
    if mix and sampling != "bank":
      raise AdainError(None, "mix blends two bank codes (sampling='bank'): gaussian draws "
                       "already fall between the bank's styles")
    if isinstance(styles, (str, os.PathLike)):
      bank = load_code(styles, stylizer.network)
    elif isinstance(styles, stylizer.net.code_type()):
      bank = jax.tree.map(jnp.asarray, styles)
    else:
      raise AdainError(None, f"styles must be a bank file or codes of the {stylizer.network} "
                       f"model ({stylizer.net.code_type().__name__}), not {type(styles).__name__}")
    self.params, self.bank = stylizer.params, bank
    self.gaussian = fit_gaussian(bank) if sampling == "gaussian" else None
    self.p, self.alpha, self.sampling, self.mix = float(p), (lo, hi), sampling, float(mix)

  def tree_flatten(self):
    return (self.params, self.bank, self.gaussian), (self.p, self.alpha, self.sampling, self.mix)

  @classmethod
  def tree_unflatten(cls, static, leaves):
    self = cls.__new__(cls)
    (self.params, self.bank, self.gaussian), (self.p, self.alpha, self.sampling, self.mix) = leaves, static
    return self

  @property
  def network(self) -> str:
    return self.params.spec.network

  def sample(self, key: jax.Array, batch: int) -> Draw:
    """What a batch of ``batch`` images gets: a pure function of ``key``."""
    return _sample(self, key, batch)

  def apply(self, draw: Draw, images_bhw3: jax.Array) -> jax.Array:
    """The images stylized as ``draw`` says."""
    return _apply(self, draw, images_bhw3)

  def __call__(self, key: jax.Array, images_bhw3: jax.Array) -> jax.Array:
    return _apply(self, _sample(self, key, images_bhw3.shape[0]), images_bhw3)



@functools.partial(jax.jit, static_argnums=2)
def _sample(aug: StyleAugment, key: jax.Array, batch: int) -> Draw:
  k_applied, k_alpha, k_code, k_other, k_mixed, k_weight = jax.random.split(key, 6)
  lo, hi = aug.alpha
  if aug.gaussian is not None:
    code = unflatten_codes(aug.bank, aug.gaussian.draw(k_code, batch))
  else:
    n = len(aug.bank)
    i = jax.random.randint(k_code, (batch,), 0, n)
    code = aug.bank[i]
    if aug.mix:  # with another bank code (itself in a bank of one)
      j = (i + jax.random.randint(k_other, (batch,), 1, max(n, 2))) % n
      w = jnp.where(jax.random.bernoulli(k_mixed, aug.mix, (batch,)),
                    jax.random.uniform(k_weight, (batch,)), 1.0)[:, None]
      code = jax.tree.map(lambda a, b: w * a + (1.0 - w) * b, code, aug.bank[j])
  return Draw(jax.random.bernoulli(k_applied, aug.p, (batch,)),
              jax.random.uniform(k_alpha, (batch,), minval=lo, maxval=hi), code)


@jax.jit
def _apply(aug: StyleAugment, draw: Draw, images_bhw3: jax.Array) -> jax.Array:
  from adain.models import network

  net = network(aug.network)
  b, h, w = images_bhw3.shape[:3]
  if min(h, w) < net.MIN_SIDE:
    raise AdainError(None, f"images of {w}x{h} pixels: both sides must be at least {net.MIN_SIDE}")
  if len(draw) != b:
    raise AdainError(None, f"a draw for {len(draw)} images applied to {b}")
  model = aug.params.bind()
  x = images_bhw3.astype(jax.tree.leaves(aug.params)[0].dtype)
  alpha, own = draw.alpha, {}
  if net.OWN_CODE and aug.alpha == (1.0, 1.0):
    alpha = 1.0  # the style's code alone: no own code needed
  elif net.OWN_CODE:
    own = {"own_code": model.encode_style(x)}
  out = model.generate(model.encode_content(x), draw.code, alpha, **own)[:, :h, :w]
  out = jnp.clip(out.astype(jnp.float32), 0.0, 1.0).astype(images_bhw3.dtype)
  return jnp.where(draw.applied[:, None, None, None], out, images_bhw3)
