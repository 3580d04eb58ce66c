"""Image files to and from float32 HWC RGB arrays in [0, 1], refusing anything odd with ImageError.

Loading follows pytorch-AdaIN's test transform (Resize, CenterCrop, ToTensor) so that our outputs
match the reference; every failure a user can cause (missing, broken, truncated, huge, or an
unwanted format) becomes one ImageError line instead of a Pillow traceback.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from adain.errors import ImageError, one_line
from adain.files import atomic_write

# Formats we decode. Anything else (EPS runs Ghostscript, PSD/ICO/... are rarely photos) is refused
# by name before a decoder runs.
ACCEPTED_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP")
_ACCEPTED_TEXT = "JPEG, PNG, BMP, GIF, TIFF or WebP"
_SAVE_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}
_ALPHA_MODES = ("LA", "La", "PA", "RGBA", "RGBa")
_WIDE_GREY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def load_image(path: str | os.PathLike, size: int = 0, crop: bool = False) -> np.ndarray:
  """Reads an image as (H, W, 3) float32 RGB in [0, 1], as pytorch-AdaIN's test transform does.

  ``size`` > 0 scales the shorter side to ``size`` (torchvision ``Resize(size)``: the longer side
  becomes ``int(size * long / short)``, PIL bilinear); ``crop`` then takes the centred
  ``size`` x ``size`` square (torchvision ``CenterCrop``). The EXIF orientation is applied first.
  Transparent images (RGBA, LA, PA, palette or colour-key transparency) are composited over WHITE
  with their alpha, since the network has no alpha channel; the result is opaque. 16-bit grey is
  scaled by 1/65535 and float images are clipped to [0, 1].
  """
  return from_pil(_decode(path), size, crop, path)


def from_pil(im: Image.Image, size: int = 0, crop: bool = False,
             path: str | os.PathLike | None = None) -> np.ndarray:
  """A decoded picture (an image file's, a video frame's) as ``load_image`` returns it."""
  if size < 0 or (crop and size == 0):
    raise ValueError(f"size must be >= 0, and > 0 with crop; got size={size}, crop={crop}")
  planes = _fit(_planes(im, path), size, crop, path)
  chans = [_as_float(p).reshape(p.size[1], p.size[0], -1) for p in planes]
  img = np.concatenate(chans, axis=2)
  if img.shape[2] == 1:
    img = np.repeat(img, 3, axis=2)
  return np.ascontiguousarray(img, dtype=np.float32)


def load_mask(path: str | os.PathLike, hw: tuple[int, int] | None = None) -> np.ndarray:
  """Reads a spatial-control mask as (h, w) float32 in {0, 1}: white (> 0.5 grey) is foreground.

  Like the original AdaIN's mask handling: greyscale, nearest-neighbour resize to ``hw``, then a
  0.5 threshold. Transparent pixels count as white, as in ``load_image``. ``hw`` None keeps the
  file's size (``resize_mask`` then gives the same mask as loading at the smaller size).
  """
  planes = _planes(_decode(path), path)
  if len(planes) == 3:  # RGB composited in float: ITU-R 601 luma, as PIL's convert("L").
    r, g, b = (np.asarray(p) for p in planes)
    planes = [Image.fromarray(0.299 * r + 0.587 * g + 0.114 * b)]
  elif planes[0].mode == "RGB":
    planes = [planes[0].convert("L")]
  grey = _as_float(planes[0])
  return resize_mask(grey, grey.shape if hw is None else hw)


def resize_mask(mask_hw: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
  """A mask with values in [0, 1] resized (nearest) to ``hw`` and thresholded at 0.5."""
  h, w = (int(v) for v in hw)
  if h <= 0 or w <= 0:
    raise ValueError(f"mask size must be positive, got {hw}")
  resized = Image.fromarray(np.asarray(mask_hw, np.float32)).resize((w, h), Image.Resampling.NEAREST)
  return (np.asarray(resized) > 0.5).astype(np.float32)


def save_image(path: str | os.PathLike, img_hw3: np.ndarray, quality: int = 95) -> None:
  """Writes (H, W, 3) floats in [0, 1] as JPEG or PNG (by extension), atomically.

  Rounds as torchvision's ``save_image`` (``clamp(x * 255 + 0.5, 0, 255)`` then truncation). The
  data goes to a temporary file in the same folder that replaces ``path`` only once complete, so a
  failure never leaves a partial image behind.
  """
  path = Path(path)
  img = np.asarray(img_hw3)
  if img.ndim != 3 or img.shape[2] != 3 or 0 in img.shape:
    raise ValueError(f"expected a non-empty (H, W, 3) array, got shape {img.shape}")
  if not np.isfinite(img).all():  # E.g. from broken weights: name the output, write nothing.
    raise ImageError(path, "the image to write has NaN or infinite values; nothing written")
  if path.is_dir():
    raise ImageError(path, "is a folder; give a file name to write the image to")
  fmt = _SAVE_FORMATS.get(path.suffix.lower())
  if fmt is None:
    ext = path.suffix or "no extension"
    raise ImageError(path, f"cannot save as {ext!r}; use .jpg, .jpeg or .png")
  folder = path.parent
  if not folder.is_dir():
    problem = "is not a folder" if folder.exists() else "does not exist"
    raise ImageError(path, f"cannot write: the parent {str(folder)!r} {problem}")
  pil = Image.fromarray(to_uint8(img), "RGB")
  try:
    with atomic_write(path) as f:
      pil.save(f, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))
  except OSError as e:
    raise ImageError(path, f"cannot write: {e.strerror or e}") from None


def to_uint8(img: np.ndarray) -> np.ndarray:
  """Floats in [0, 1] to bytes as torchvision's ``save_image`` rounds them.

  float32 arithmetic, as torchvision does on the model's float32 tensors (boundaries matter).
  """
  scaled = np.asarray(img).astype(np.float32) * np.float32(255) + np.float32(0.5)
  return np.clip(scaled, 0, 255).astype(np.uint8)


def _decode(path: str | os.PathLike) -> Image.Image:
  """Opens, checks and fully decodes the first frame, upright; the file is closed on return."""
  p = Path(path)
  if p.is_dir():
    raise ImageError(path, "is a folder, not an image file")
  try:
    f = open(p, "rb")
  except FileNotFoundError:
    raise ImageError(path, "no such file") from None
  except OSError as e:
    raise ImageError(path, f"cannot open: {e.strerror or e}") from None
  with f:
    if os.fstat(f.fileno()).st_size == 0:
      raise ImageError(path, "file is empty (0 bytes)")
    # Pillow warns past MAX_IMAGE_PIXELS and raises past twice that; we refuse both, from the
    # header, before decoding. catch_warnings restores the caller's filters on exit.
    with warnings.catch_warnings():
      warnings.simplefilter("error", Image.DecompressionBombWarning)
      try:
        im = Image.open(f, formats=ACCEPTED_FORMATS)
      except Image.UnidentifiedImageError:
        raise ImageError(path, _unidentified(f)) from None
      except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(path, _too_big(_header_size(f))) from None
      except Exception as e:  # A plugin choking on a malformed header.
        raise ImageError(path, f"corrupt {_sniff(f) or 'image'} file ({one_line(e)})") from None
      # Restated rather than trusted to Pillow's warning mechanics: the limit itself is the rule.
      if Image.MAX_IMAGE_PIXELS is not None and im.width * im.height > Image.MAX_IMAGE_PIXELS:
        raise ImageError(path, _too_big(im.size))
      fmt = im.format
      try:
        im.load()  # Image.open leaves multi-frame files on their first frame.
        return ImageOps.exif_transpose(im)
      except Exception as e:  # Decoders raise OSError, SyntaxError, ValueError, EOFError, ...
        if "truncated" in str(e):
          problem = f"{fmt} file is truncated (it ends before the image data does)"
          raise ImageError(path, problem) from None
        raise ImageError(path, f"corrupt {fmt} data ({one_line(e)})") from None


def _unidentified(f) -> str:
  """Names the format Pillow sees in the file, so that a refusal says what it refused."""
  name = _sniff(f)
  if name is None:
    return f"not an image file in a format we read ({_ACCEPTED_TEXT})"
  if name in ACCEPTED_FORMATS:
    return f"corrupt {name} file (its header cannot be parsed)"
  return f"{name} images are not accepted; use {_ACCEPTED_TEXT}"


def _sniff(f) -> str | None:
  """The Pillow format whose signature the file starts with, without running any decoder."""
  f.seek(0)
  prefix = f.read(16)
  Image.init()
  for name, (_, accept) in Image.OPEN.items():
    try:
      result = accept is not None and accept(prefix)
    except Exception:  # Some plugins' sniffers index past a short prefix.
      continue
    if result and not isinstance(result, str):  # A str is Pillow's "looks like X, but unreadable".
      return name
  return None


def _header_size(f) -> tuple[int, int] | None:
  """The declared size, from the plugin's header parser alone (Image.open refuses to say)."""
  name = _sniff(f)
  if name not in ACCEPTED_FORMATS:
    return None
  f.seek(0)
  try:
    return Image.OPEN[name][0](f, "").size
  except Exception:
    return None


def _too_big(wh: tuple[int, int] | None) -> str:
  dims = "" if wh is None else f"{wh[0]}x{wh[1]} = {wh[0] * wh[1]} pixels, "
  limit = Image.MAX_IMAGE_PIXELS
  return f"image too large ({dims}limit {limit}); refusing a possible decompression bomb"


def _has_alpha(im: Image.Image) -> bool:
  if im.mode in _ALPHA_MODES or "transparency" in im.info:
    return True
  return im.mode == "P" and im.palette is not None and im.palette.mode.endswith("A")


def _planes(im: Image.Image, path) -> list[Image.Image]:
  """Splits into images that resize like torchvision's: one 8-bit L/RGB, or 1 or 3 in mode F.

  8-bit images stay 8-bit so Resize rounds exactly as in PyTorch; deeper or composited data is
  kept in float ("F", values already in [0, 1]) to avoid losing precision.
  """
  if im.mode in _WIDE_GREY_MODES:
    arr = np.asarray(im).astype(np.float32) / 65535.0
    return [Image.fromarray(np.clip(arr, 0.0, 1.0))]
  if im.mode == "F":
    return [Image.fromarray(np.clip(np.nan_to_num(np.asarray(im)), 0.0, 1.0))]
  if _has_alpha(im):
    rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0
    alpha = rgba[..., 3]
    return [Image.fromarray(rgba[..., c] * alpha + (1.0 - alpha)) for c in range(3)]
  if im.mode in ("1", "L"):
    return [im.convert("L")]
  try:
    return [im.convert("RGB")]
  except ValueError as e:
    raise ImageError(path, f"unsupported colour mode {im.mode} ({one_line(e)})") from None


def center_offsets(h: int, w: int, size: int) -> tuple[int, int]:
  """Top and left of the centred size x size square of an h x w image, rounded as
  torchvision's CenterCrop rounds them (``load_image``'s crop and adain.stylize_dataset's)."""
  return int(round((h - size) / 2.0)), int(round((w - size) / 2.0))


def _fit(planes: list[Image.Image], size: int, crop: bool, path) -> list[Image.Image]:
  """torchvision Resize(size) then CenterCrop(size), with torchvision's integer rounding."""
  w, h = planes[0].size
  if size:
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    nw, nh = (new_short, new_long) if w <= h else (new_long, new_short)
    if Image.MAX_IMAGE_PIXELS is not None and nw * nh > Image.MAX_IMAGE_PIXELS:
      problem = f"resizing {w}x{h} to {nw}x{nh} would exceed {Image.MAX_IMAGE_PIXELS} pixels"
      raise ImageError(path, problem)
    if (nw, nh) != (w, h):
      planes = [p.resize((nw, nh), Image.Resampling.BILINEAR) for p in planes]
      w, h = nw, nh
  if crop:
    top, left = center_offsets(h, w, size)
    planes = [p.crop((left, top, left + size, top + size)) for p in planes]
  return planes


def _as_float(p: Image.Image) -> np.ndarray:
  arr = np.asarray(p, dtype=np.float32)
  return arr if p.mode == "F" else arr / 255.0
