"""Image I/O: odd but valid files convert right; broken or unwanted ones raise a one-line error."""

from __future__ import annotations

import os
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from adain.media import images
from adain import files
from adain.errors import ImageError
from adain.media.images import load_image, load_mask, save_image


@pytest.fixture(autouse=True)
def pillow_globals_untouched():
  """Our loader must never loosen Pillow's safety switches for the rest of the process."""
  before = (ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS)
  yield
  assert (ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS) == before


def _grad(w: int, h: int) -> Image.Image:
  """An RGB image with distinct, non-symmetric pixel values."""
  y, x = np.mgrid[0:h, 0:w]
  arr = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x * 7 + y * 13) % 256], -1)
  return Image.fromarray(arr.astype(np.uint8))


def _refused(path, *words: str) -> str:
  with pytest.raises(ImageError) as info:
    load_image(path)
  msg = str(info.value)
  assert msg.startswith(f"{path}: ") and "\n" not in msg
  for word in words:
    assert word in msg, msg
  return msg


# --- resize and crop: torchvision Resize(size) / CenterCrop(size) semantics ---------------------

@pytest.mark.parametrize("wh, size, out_wh", [
    ((300, 200), 100, (150, 100)),
    ((200, 300), 100, (100, 150)),
    ((333, 200), 100, (166, 100)),  # int(166.5): truncation, not rounding.
    ((200, 199), 100, (100, 100)),  # int(100.502...)
    ((50, 30), 60, (100, 60)),  # Upscaling.
])
def test_resize_output_size_and_values(tmp_path, wh, size, out_wh):
  path = tmp_path / "a.png"
  _grad(*wh).save(path)
  img = load_image(path, size)
  assert img.shape == (out_wh[1], out_wh[0], 3) and img.dtype == np.float32
  reference = Image.open(path).convert("RGB").resize(out_wh, Image.Resampling.BILINEAR)
  expected = np.asarray(reference) / 255
  np.testing.assert_array_equal(img, expected.astype(np.float32))


def test_resize_is_a_no_op_when_the_short_side_matches(tmp_path):
  path = tmp_path / "a.png"
  _grad(37, 20).save(path)
  np.testing.assert_array_equal(load_image(path, 20), load_image(path))


@pytest.mark.parametrize("wh, top, left", [((4, 9), 2, 0), ((7, 4), 0, 2), ((4, 11), 4, 0)])
def test_center_crop_uses_python_round(tmp_path, wh, top, left):
  """round(2.5) == 2 and round(3.5) == 4: torchvision's offsets are int(round((h - size) / 2))."""
  path = tmp_path / "a.png"
  im = _grad(*wh)
  im.save(path)
  img = load_image(path, 4, crop=True)
  full = np.asarray(im, dtype=np.float32) / 255
  np.testing.assert_array_equal(img, full[top:top + 4, left:left + 4])


def test_resize_then_crop(tmp_path):
  path = tmp_path / "a.png"
  _grad(300, 200).save(path)
  img = load_image(path, 100, crop=True)
  np.testing.assert_array_equal(img, load_image(path, 100)[:, 25:125])


def test_bad_size_arguments(tmp_path):
  path = tmp_path / "a.png"
  _grad(4, 4).save(path)
  with pytest.raises(ValueError):
    load_image(path, -1)
  with pytest.raises(ValueError):
    load_image(path, 0, crop=True)


def test_resize_refuses_an_absurd_output(tmp_path, monkeypatch):
  path = tmp_path / "thin.png"
  _grad(40, 1).save(path)
  monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
  with pytest.raises(ImageError, match="would exceed"):
    load_image(path, 10)  # 400 x 10 pixels from a 40 x 1 strip.


# --- odd but valid images -----------------------------------------------------------------------

@pytest.mark.parametrize("fmt, kw", [
    ("BMP", {}), ("TIFF", {}), ("WEBP", {"lossless": True}), ("PNG", {}),
])
def test_lossless_formats_round_trip(tmp_path, fmt, kw):
  path = tmp_path / f"a.{fmt.lower()}"
  im = _grad(5, 3)
  im.save(path, format=fmt, **kw)
  np.testing.assert_array_equal(load_image(path), np.asarray(im, dtype=np.float32) / 255)


def test_cmyk_jpeg(tmp_path):
  path = tmp_path / "cmyk.jpg"
  Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, quality=95)  # Pure red in CMYK.
  assert Image.open(path).mode == "CMYK"
  np.testing.assert_allclose(load_image(path).mean((0, 1)), [1, 0, 0], atol=0.03)


@pytest.mark.parametrize("fmt, mode", [("PNG", "I;16"), ("TIFF", "I;16B"), ("TIFF", "I")])
def test_wide_grey_is_scaled_not_clipped(tmp_path, fmt, mode):
  values = np.array([[0, 255, 1000, 30000, 65535]])
  path = tmp_path / f"g.{fmt.lower()}"
  dtype = {"I;16": "<u2", "I;16B": ">u2", "I": "<i4"}[mode]
  Image.frombytes(mode, (5, 1), values.astype(dtype).tobytes()).save(path, format=fmt)
  assert Image.open(path).mode == mode
  img = load_image(path)
  np.testing.assert_allclose(img[0, :, 0], values[0] / 65535, rtol=1e-6)
  np.testing.assert_array_equal(img[..., 0], img[..., 2])


def test_float_tiff_is_clipped(tmp_path):
  path = tmp_path / "f.tif"
  Image.fromarray(np.array([[-0.5, 0.25, 2.0]], np.float32)).save(path)
  np.testing.assert_array_equal(load_image(path)[0, :, 1], np.float32([0, 0.25, 1]))


def test_one_bit_and_grey(tmp_path):
  bits, grey = tmp_path / "b.png", tmp_path / "g.png"
  Image.fromarray(np.array([[0, 255]], np.uint8)).convert("1").save(bits)
  Image.fromarray(np.array([[0, 51]], np.uint8)).save(grey)
  np.testing.assert_array_equal(load_image(bits)[0], [[0, 0, 0], [1, 1, 1]])
  np.testing.assert_allclose(load_image(grey)[0], [[0, 0, 0], [0.2, 0.2, 0.2]], rtol=1e-6)


def test_rgba_is_composited_over_white(tmp_path):
  path = tmp_path / "a.png"
  px = np.array([[[255, 0, 0, 64], [0, 0, 255, 0], [10, 20, 30, 255], [0, 0, 0, 128]]], np.uint8)
  Image.fromarray(px, "RGBA").save(path)
  a = 64 / 255
  expected = [[1, 1 - a, 1 - a], [1, 1, 1], [10 / 255, 20 / 255, 30 / 255], [1 - 128 / 255] * 3]
  np.testing.assert_allclose(load_image(path)[0], expected, atol=1e-6)


def test_la_is_composited_over_white(tmp_path):
  path = tmp_path / "la.png"
  Image.fromarray(np.array([[[0, 128], [200, 255]]], np.uint8), "LA").save(path)
  np.testing.assert_allclose(load_image(path)[0, :, 0], [1 - 128 / 255, 200 / 255], atol=1e-6)


def _palette_image() -> Image.Image:
  im = Image.fromarray(np.array([[0, 1, 2, 1]], np.uint8), "P")
  im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 0] + [0] * 759)
  return im


def test_palette_png_with_transparency(tmp_path):
  path = tmp_path / "p.png"
  _palette_image().save(path, transparency=1)  # Green (index 1) is fully transparent.
  np.testing.assert_array_equal(load_image(path)[0], [[1, 0, 0], [1, 1, 1], [0, 0, 0], [1, 1, 1]])


def test_gif_first_frame_with_transparency(tmp_path):
  path = tmp_path / "anim.gif"
  second = Image.fromarray(np.full((1, 4), 2, np.uint8), "P")
  second.putpalette(_palette_image().getpalette())
  _palette_image().save(path, save_all=True, append_images=[second], transparency=1, disposal=2)
  np.testing.assert_array_equal(load_image(path)[0], [[1, 0, 0], [1, 1, 1], [0, 0, 0], [1, 1, 1]])


# Stored image for each EXIF orientation -> the upright picture a viewer shows (EXIF 2.3 spec).
_UPRIGHT = {
    1: lambda a: a,
    2: np.fliplr,
    3: lambda a: np.rot90(a, 2),
    4: np.flipud,
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),  # Stored rotated 90 degrees anticlockwise: turn it clockwise.
    7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


@pytest.mark.parametrize("orientation", sorted(_UPRIGHT))
def test_exif_orientation(tmp_path, orientation):
  path = tmp_path / "o.png"
  im = _grad(3, 2)
  exif = Image.Exif()
  exif[0x0112] = orientation
  im.save(path, exif=exif)
  expected = _UPRIGHT[orientation](np.asarray(im, dtype=np.float32) / 255)
  np.testing.assert_array_equal(load_image(path), expected)


# --- refused files ------------------------------------------------------------------------------

def test_missing_directory_and_empty(tmp_path):
  _refused(tmp_path / "nope.jpg", "no such file")
  _refused(tmp_path, "is a folder")
  (tmp_path / "empty.png").write_bytes(b"")
  _refused(tmp_path / "empty.png", "empty")


def test_text_file_named_jpg(tmp_path):
  path = tmp_path / "notes.jpg"
  path.write_text("just some text, not a picture\n" * 10)
  _refused(path, "not an image file")


@pytest.mark.parametrize("name, data, fmt", [
    ("x.eps", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n", "EPS"),
    ("x.psd", b"8BPS\x00\x01" + b"\x00" * 40, "PSD"),
])
def test_other_formats_refused_by_name(tmp_path, name, data, fmt):
  (tmp_path / name).write_bytes(data)
  _refused(tmp_path / name, f"{fmt} images are not accepted")


def test_real_eps_is_refused_too(tmp_path):
  """Even a file Pillow's EPS plugin would parse never reaches it."""
  path = tmp_path / "real.eps"
  _grad(4, 4).save(path, format="EPS")
  _refused(path, "EPS images are not accepted")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated(tmp_path, fmt):
  path = tmp_path / f"t.{fmt.lower()}"
  noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
  Image.fromarray(noise).save(path, format=fmt)
  data = path.read_bytes()
  path.write_bytes(data[: len(data) // 2])
  _refused(path, "truncated")


def test_corrupt_header(tmp_path):
  path = tmp_path / "c.png"
  path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\xff" * 40)
  _refused(path, "corrupt PNG")


def _png_header_only(w: int, h: int) -> bytes:
  def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
  ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
  return b"\x89PNG\r\n\x1a\n" + ihdr + chunk(b"IEND", b"")


def test_bomb_refused_from_the_header(tmp_path):
  """No pixel data at all: decoding would say 'truncated', so 'too large' shows it was not tried."""
  path = tmp_path / "bomb.png"
  path.write_bytes(_png_header_only(100_000, 100_000))
  _refused(path, "too large", "100000x100000")


@pytest.mark.parametrize("wh", [(12, 12), (11, 10), (30, 30)])  # (11, 10) is just past the limit.
def test_more_pixels_than_max_image_pixels(tmp_path, monkeypatch, wh):
  """Past MAX (Pillow only warns) and past 2 * MAX (Pillow raises) are both hard errors."""
  path = tmp_path / "big.png"
  _grad(*wh).save(path)
  monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
  filters = list(warnings.filters)
  _refused(path, "too large", f"{wh[0]}x{wh[1]}")
  assert warnings.filters == filters and Image.MAX_IMAGE_PIXELS == 100


def test_exactly_max_image_pixels_is_fine(tmp_path, monkeypatch):
  path = tmp_path / "ok.png"
  _grad(10, 10).save(path)
  monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
  assert load_image(path).shape == (10, 10, 3)


# --- masks --------------------------------------------------------------------------------------

def test_mask_threshold_and_nearest_resize(tmp_path):
  path = tmp_path / "m.png"
  Image.fromarray(np.array([[0, 127, 128, 255]], np.uint8)).save(path)
  np.testing.assert_array_equal(load_mask(path, (1, 4)), [[0, 0, 1, 1]])
  mask = load_mask(path, (3, 8))
  assert mask.shape == (3, 8) and mask.dtype == np.float32
  np.testing.assert_array_equal(mask, np.repeat([[0, 0, 1, 1]], 2, axis=1).repeat(3, axis=0))


def test_mask_from_colour_with_alpha(tmp_path):
  path = tmp_path / "m.png"
  px = np.array([[[0, 0, 0, 255], [0, 0, 0, 0], [255, 255, 255, 255], [255, 0, 0, 255]]], np.uint8)
  Image.fromarray(px, "RGBA").save(path)  # Transparent counts as white; pure red is dark (0.299).
  np.testing.assert_array_equal(load_mask(path, (1, 4)), [[0, 1, 1, 0]])


# --- saving -------------------------------------------------------------------------------------

def test_save_rounding_like_torchvision(tmp_path):
  path = tmp_path / "s.png"
  x = np.float32([0, 0.4 / 255, 0.6 / 255, 0.2, 0.5, 0.998, 1, 1.5, -1, 254.6 / 255])
  save_image(path, np.stack([x, x, x], -1)[None])
  got = np.asarray(Image.open(path))[0, :, 0]
  np.testing.assert_array_equal(got, [0, 0, 1, 51, 128, 254, 255, 255, 0, 255])


def test_save_load_round_trip_is_exact(tmp_path):
  path = tmp_path / "r.png"
  img = np.asarray(_grad(9, 7), dtype=np.float32) / 255
  save_image(path, img)
  np.testing.assert_array_equal(load_image(path), img)


@pytest.mark.parametrize("name, magic", [
    ("o.jpg", b"\xff\xd8"), ("o.JPEG", b"\xff\xd8"), ("o.png", b"\x89PNG"),
])
def test_save_format_from_extension(tmp_path, name, magic):
  save_image(tmp_path / name, np.full((4, 4, 3), 0.5, np.float32))
  assert (tmp_path / name).read_bytes().startswith(magic)
  assert os.listdir(tmp_path) == [name]


def test_save_errors(tmp_path):
  img = np.zeros((2, 2, 3), np.float32)
  (tmp_path / "file").write_text("x")
  for path, words in [
      (tmp_path / "o.gif", "use .jpg"),
      (tmp_path, "is a folder"),
      (tmp_path / "missing" / "o.png", "does not exist"),
      (tmp_path / "file" / "o.png", "is not a folder"),
  ]:
    with pytest.raises(ImageError, match=words):
      save_image(path, img)
  with pytest.raises(ValueError):
    save_image(tmp_path / "o.png", np.zeros((2, 2), np.float32))
  with pytest.raises(ImageError, match="NaN"):
    save_image(tmp_path / "o.png", np.full((2, 2, 3), np.nan, np.float32))
  assert sorted(os.listdir(tmp_path)) == ["file"]


def test_save_to_read_only_folder(tmp_path, monkeypatch):
  folder = tmp_path / "ro"
  folder.mkdir(mode=0o555)
  if os.geteuid() == 0:  # Root writes anywhere: have the kernel's answer for other users.
    def denied(*args, **kwargs):
      raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(files, "open", denied, raising=False)  # adain.files opens every file it writes
  with pytest.raises(ImageError, match="cannot write: Permission denied"):
    save_image(folder / "o.png", np.zeros((2, 2, 3), np.float32))


@pytest.mark.parametrize("exc", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_save_is_atomic(tmp_path, monkeypatch, exc):
  """A write that dies midway leaves the old file intact and no temporary file behind."""
  path = tmp_path / "o.png"
  path.write_bytes(b"old")

  def failing_save(self, fp, *args, **kwargs):
    fp.write(b"partial")
    raise exc

  monkeypatch.setattr(Image.Image, "save", failing_save)
  with pytest.raises(ImageError if isinstance(exc, OSError) else KeyboardInterrupt):
    save_image(path, np.zeros((2, 2, 3), np.float32))
  assert os.listdir(tmp_path) == ["o.png"] and path.read_bytes() == b"old"


def test_saved_file_gets_normal_permissions(tmp_path):
  path = tmp_path / "o.png"
  save_image(path, np.zeros((2, 2, 3), np.float32))
  umask = os.umask(0)
  os.umask(umask)
  assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_accepted_formats():
  assert set(images.ACCEPTED_FORMATS) == {"JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP"}
