"""Colour preservation: keep the content image's colours in a stylization.

Two methods, both on float RGB images in [0, 1], shape (..., H, W, 3), as numpy arrays:

* ``coral``: pytorch-AdaIN's ``--preserve_color``. The style image is recoloured to the content's
  colour statistics before it is encoded: ``style = coral(style, content)``.
* Luminance-only transfer (Gatys et al. 2016, "Preserving Color in Neural Artistic Style
  Transfer", section 2.2): stylize the luminance only, then put the content's chroma back.
  ``content_input`` and ``style_input`` make the two network inputs, ``merge_luminance`` the final
  image. Colour space: YIQ (NTSC), as in that paper.
"""

from __future__ import annotations

import numpy as np

# RGB -> YIQ (NTSC 1953). Rows: Y, I, Q. Its exact inverse, so that RGB -> YIQ -> RGB round-trips.
RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                       [0.595716, -0.274453, -0.321263],
                       [0.211456, -0.522591, 0.311135]])
YIQ_TO_RGB = np.linalg.inv(RGB_TO_YIQ)


def _flat_mean_std(img_hw3: np.ndarray):
  """(3, N) pixels, their per-channel mean and unbiased std, as the reference computes them."""
  flat = np.asarray(img_hw3, np.float64).reshape(-1, 3).T
  return flat, flat.mean(axis=1, keepdims=True), flat.std(axis=1, ddof=1, keepdims=True)


def _mat_sqrt(m33: np.ndarray) -> np.ndarray:
  """U sqrt(D) V^T from the SVD, as the reference's _mat_sqrt (m is symmetric positive definite)."""
  u, d, vt = np.linalg.svd(m33)
  return (u * np.sqrt(d)) @ vt


def coral(source_hw3: np.ndarray, target_hw3: np.ndarray) -> np.ndarray:
  """``source`` recoloured to ``target``'s colour mean and covariance (pytorch-AdaIN's coral).

  Follows function.py exactly: channels are standardised (unbiased std), whitened with the inverse
  square root of ``X X^T + I`` (the unnormalised covariance of the standardised pixels plus the
  identity), coloured with the target's, then given the target's std and mean. Computed in float64
  (the reference uses float32), returned as float32 and NOT clipped: the reference encodes values
  outside [0, 1] as they are.

  Kept quirk: as the covariances are unnormalised sums, the output's covariance is the target's
  times (N_target - 1) / (N_source - 1), N being pixel counts; a style larger than the content
  comes out with less colour contrast. One difference: a constant channel, where the reference
  divides by a zero std and returns NaN, is standardised to 0 (a flat target channel gives its
  mean).
  """
  src, src_mean, src_std = _flat_mean_std(source_hw3)
  tgt, tgt_mean, tgt_std = _flat_mean_std(target_hw3)
  src_norm = (src - src_mean) / np.where(src_std > 0, src_std, 1.0)
  tgt_norm = (tgt - tgt_mean) / np.where(tgt_std > 0, tgt_std, 1.0)
  src_cov_eye = src_norm @ src_norm.T + np.eye(3)
  tgt_cov_eye = tgt_norm @ tgt_norm.T + np.eye(3)
  transfer = _mat_sqrt(tgt_cov_eye) @ np.linalg.inv(_mat_sqrt(src_cov_eye)) @ src_norm
  out = transfer * tgt_std + tgt_mean
  return out.T.reshape(np.shape(source_hw3)).astype(np.float32)


def rgb_to_yiq(rgb: np.ndarray) -> np.ndarray:
  return np.asarray(rgb, np.float64) @ RGB_TO_YIQ.T


def yiq_to_rgb(yiq: np.ndarray) -> np.ndarray:
  return np.asarray(yiq, np.float64) @ YIQ_TO_RGB.T


def luminance(rgb: np.ndarray) -> np.ndarray:
  """Y of YIQ (Rec. 601 luma weights), shape (..., H, W)."""
  return rgb_to_yiq(rgb)[..., 0]


def _gray3(y: np.ndarray) -> np.ndarray:
  return np.repeat(y[..., None], 3, axis=-1).astype(np.float32)


def content_input(content: np.ndarray, method: str | None) -> np.ndarray:
  """The image the network encodes as content for a preserve-colour ``method`` (None, "coral"
  or "luminance"): the content itself, or for luminance its Y in all three channels.

  With ``style_input`` and ``output`` this splits a colour-preserving stylization into steps
  whose codes can be kept (adain.app restyles a cached content code with new styles).
  """
  return _gray3(luminance(content)) if method == "luminance" else content


def style_input(style: np.ndarray, content: np.ndarray, method: str | None) -> np.ndarray:
  """The image the network encodes as style: the style itself, recoloured by ``coral``, or for
  luminance its Y in all three channels, float32 (..., H, W, 3).

  For luminance the style's Y is first matched to the content's mean and std (population std,
  over each image's H and W), ``(Y_s - mu_s) * sigma_c / sigma_s + mu_c``, so that the
  stylization keeps the content's brightness and contrast rather than the style's. A flat style
  keeps its flat Y, moved to the content's mean. Not clipped: matching can leave [0, 1] slightly,
  which the network takes.
  """
  if method == "coral":
    return coral(style, content)
  if method != "luminance":
    return style
  y_c, y_s = luminance(content), luminance(style)
  mu_c, sigma_c = y_c.mean(axis=(-2, -1), keepdims=True), y_c.std(axis=(-2, -1), keepdims=True)
  mu_s, sigma_s = y_s.mean(axis=(-2, -1), keepdims=True), y_s.std(axis=(-2, -1), keepdims=True)
  return _gray3((y_s - mu_s) * (sigma_c / np.where(sigma_s > 0, sigma_s, np.inf)) + mu_c)


def output(stylized: np.ndarray, content: np.ndarray, method: str | None) -> np.ndarray:
  """The final image from the network's: for luminance, with the content's chroma put back."""
  return merge_luminance(stylized, content) if method == "luminance" else stylized


def merge_luminance(output_y_image: np.ndarray, content: np.ndarray) -> np.ndarray:
  """The final RGB image: the stylization's luminance with the content's chroma, in [0, 1].

  ``output_y_image`` is what the network made from the luminance inputs (RGB, usually
  near-gray; its Y is taken), already cropped to the content's size. Its Y replaces the content's
  Y in YIQ; I and Q stay the content's. The result is clipped to [0, 1], float32.
  """
  if np.shape(output_y_image) != np.shape(content):
    raise ValueError(f"stylized image shape {np.shape(output_y_image)} differs from the content's "
                     f"{np.shape(content)}; crop it first")
  yiq = rgb_to_yiq(content)
  yiq[..., 0] = luminance(output_y_image)
  return np.clip(yiq_to_rgb(yiq), 0.0, 1.0).astype(np.float32)
