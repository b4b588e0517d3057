"""The one image-input path of the project: every upload in every tab and CLI goes through here.

Rules (they answer ``../shared/cases/cases.md`` case by case):

* The file type is decided by decoding the bytes with Pillow, never by the file name. Only raster
  formats in :data:`ALLOWED_FORMATS` are accepted; SVG/HTML/text is refused with its own message.
* Decompression bombs are refused from the header alone, before any pixel is allocated
  (width x height above :data:`MAX_PIXELS`).
* EXIF orientation is applied, so images are processed upright.
* Animated images (GIF, APNG, WebP): the **first frame** is used, everywhere.
* Every colour mode becomes 3-channel ``RGB``. Transparency is composited onto **white**
  (:data:`BACKGROUND`), the colour a transparent PNG shows on a web page, whether it is stored
  as an alpha channel or as a ``tRNS`` colour key (an RGB, grayscale, 16-bit or palette PNG
  naming one colour "transparent"): both give the same pixels.
* Images larger than ``max_side`` pixels on their long side are downscaled (aspect kept) so
  memory stays bounded; tiny images are kept as they are (models resize them).
"""
from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from engine.errors import UserInputError

#: Largest image accepted, in pixels (width * height), judged from the header before decoding.
MAX_PIXELS = 50_000_000
#: Largest upload accepted, in bytes.
MAX_BYTES = 25 * 1024 * 1024
#: Long side (pixels) that images are downscaled to on load; models resize further themselves.
DEFAULT_MAX_SIDE = 1024
#: Background colour transparency is composited onto (RGB, 0..255).
BACKGROUND = (255, 255, 255)
#: Raster formats the server decodes.
ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF", "MPO")

# Pillow's own bomb guard would raise later and with a less helpful message; ours comes first.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

ImageSource = Union[str, os.PathLike, bytes, Image.Image, np.ndarray]


class ImageInputError(UserInputError):
    """An upload that cannot be used as an image; the message is meant for the user."""


@dataclass(frozen=True)
class LoadedImage:
    """An image after the input rules, with what the user should be told about it.

    Attributes:
        image: RGB ``PIL.Image`` upright, at most ``max_side`` pixels on its long side.
        original_size: (width, height) in pixels after EXIF orientation, before downscaling.
        notes: plain-language remarks (e.g. "first frame of an animated GIF used").
    """

    image: Image.Image
    original_size: tuple[int, int]
    notes: tuple[str, ...] = ()


def _display_name(source: ImageSource, name: str | None) -> str:
    if name:
        return Path(str(name)).name
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name
    return "the image"


def _sniff_text(head: bytes) -> str | None:
    """Name text formats people upload by mistake (HTML, SVG, JSON), from the first bytes."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "an SVG vector drawing (it may contain scripts), not a raster image"
    if text.startswith((b"<!doctype html", b"<html")) or b"<script" in text[:512]:
        return "an HTML/text file, not an image"
    if text[:1] in (b"{", b"["):
        return "a text (JSON) file, not an image"
    return None


def _read_bytes(source: ImageSource, label: str, max_bytes: int) -> bytes:
    if isinstance(source, bytes):
        data = source
    else:
        path = Path(source)
        if path.is_dir():
            raise ImageInputError(f"{label} is a folder, not an image file.")
        if not path.is_file():
            raise ImageInputError(f"{label}: file not found.")
        size = path.stat().st_size
        if size > max_bytes:
            raise ImageInputError(
                f"{label} is {size / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB.")
        data = path.read_bytes()
    if len(data) == 0:
        raise ImageInputError(f"{label} is an empty file (0 bytes).")
    if len(data) > max_bytes:
        raise ImageInputError(
            f"{label} is {len(data) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB.")
    return data


def _convert(convert, image: Image.Image, label: str) -> Image.Image:
    """Run a colour conversion; a mode Pillow cannot convert is the file's problem, said so."""
    try:
        return convert()
    except ImageInputError:
        raise
    except (ValueError, OSError) as exc:
        raise ImageInputError(f"{label} uses the colour mode {image.mode}, which cannot be "
                              f"converted to RGB ({exc}).") from None


#: Modes Pillow converts to "L" directly; any other goes through :func:`to_rgb` first.
_GRAY_CONVERTIBLE = ("1", "L", "P", "RGB", "RGBX", "CMYK", "YCbCr", "I", "F", "I;16")


def to_rgb(image: Image.Image, background: tuple[int, int, int] = BACKGROUND) -> Image.Image:
    """Convert any Pillow mode to 3-channel RGB, compositing transparency onto ``background``.

    Transparency is an alpha channel (RGBA, LA, PA) or a colour key (``image.info
    ["transparency"]``: a PNG ``tRNS`` chunk on an RGB, grayscale, 1-bit, 16-bit or palette
    image, a GIF's transparent index); pixels of the key colour are treated as alpha 0.

    Args:
        image: a decoded image in any mode (1, L, LA, P, RGBA, I;16, I, F, CMYK, YCbCr, ...).
        background: RGB colour (0..255) placed under transparent pixels.

    Returns:
        A new ``RGB`` image of the same size.
    """
    keyed = "transparency" in image.info  # a tRNS colour key (or a palette's transparent entry)
    if image.mode == "RGB" and not keyed:
        return image.copy()
    if image.mode == "P":
        image = image.convert("RGBA") if image.has_transparency_data else image.convert("RGB")
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        arr = np.asarray(image, dtype=np.float64)
        opaque = arr != image.info["transparency"] if keyed else None  # 16-bit colour key
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        arr = np.nan_to_num((arr - lo) * scale).clip(0, 255).astype(np.uint8)
        image = Image.fromarray(arr, mode="L")
        if opaque is not None:
            image = Image.merge("LA", (image, Image.fromarray(opaque.astype(np.uint8) * 255)))
    if image.mode in ("RGBA", "LA", "La", "RGBa", "PA") or image.has_transparency_data:
        rgba = image.convert("RGBA")  # a colour key (RGB, L, 1 + tRNS) becomes alpha 0 here
        base = Image.new("RGBA", rgba.size, background + (255,))
        return Image.alpha_composite(base, rgba).convert("RGB")
    if image.mode == "LAB":  # CIELAB TIFFs: Pillow's convert() has no LAB -> RGB path
        from PIL import ImageCms
        lab_to_srgb = ImageCms.buildTransform(ImageCms.createProfile("LAB"),
                                              ImageCms.createProfile("sRGB"), "LAB", "RGB")
        return ImageCms.applyTransform(image, lab_to_srgb)
    return image.convert("RGB")


def decode_image(source: ImageSource, *, name: str | None = None, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS
                 ) -> tuple[Image.Image, list[str]]:
    """Decode an upload with every safety rule, keeping its colour mode (see :func:`load_image`).

    Returns:
        (image upright in its own mode, notes for the user).

    Raises:
        ImageInputError: as :func:`load_image`.
    """
    label = _display_name(source, name)
    notes: list[str] = []
    if isinstance(source, np.ndarray):
        source = Image.fromarray(_array_to_uint8(source, label))
    if isinstance(source, Image.Image):
        img = source
        width, height = img.size
        if width * height > max_pixels:
            raise ImageInputError(
                f"{label} is {width}x{height} pixels; the limit is {max_pixels / 1e6:.0f} megapixels.")
    else:
        data = _read_bytes(source, label, max_bytes)
        text_kind = _sniff_text(data[:1024])
        if text_kind:
            raise ImageInputError(f"{label} is {text_kind}. Upload a PNG, JPEG, WebP, GIF or BMP image.")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise ImageInputError(
                f"{label} is not an image that can be decoded (unknown or corrupt format).") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageInputError(
                f"{label} claims more than {max_pixels / 1e6:.0f} megapixels; refused before "
                f"decoding (decompression-bomb guard).") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageInputError(
                f"{label} is truncated or corrupt and cannot be decoded ({exc}).") from None
        width, height = img.size
        if width * height > max_pixels or width <= 0 or height <= 0:
            raise ImageInputError(
                f"{label} claims {width}x{height} pixels; the limit is "
                f"{max_pixels / 1e6:.0f} megapixels (refused before decoding).")
        if img.format not in ALLOWED_FORMATS:
            raise ImageInputError(
                f"{label} is a {img.format} file; accepted formats: {', '.join(ALLOWED_FORMATS)}.")
        if getattr(img, "n_frames", 1) > 1:
            notes.append(f"{label} is animated ({img.n_frames} frames): the first frame is used.")
            img.seek(0)
        try:
            img.load()
        except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
            raise ImageInputError(
                f"{label} is truncated or corrupt and cannot be decoded ({exc}).") from None
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # malformed EXIF must not block an otherwise good image
        notes.append(f"{label}: unreadable EXIF orientation was ignored.")
    return img, notes


def load_image(source: ImageSource, *, name: str | None = None,
               max_side: int | None = DEFAULT_MAX_SIDE, max_bytes: int = MAX_BYTES,
               max_pixels: int = MAX_PIXELS) -> LoadedImage:
    """Decode an upload into an upright RGB image, or refuse it with a message for the user.

    Args:
        source: a file path, raw bytes, a ``PIL.Image`` or an (H, W[, C]) array (uint8, or
            float in [0, 1]).
        name: the name to quote in messages (a client's file name is only ever quoted, never
            used to decide the type).
        max_side: long side in pixels to downscale to (None keeps the size).
        max_bytes: largest accepted file size in bytes.
        max_pixels: largest accepted width * height, judged from the header.

    Returns:
        :class:`LoadedImage` with an ``RGB`` image.

    Raises:
        ImageInputError: empty, oversized, not an image, unsupported format, truncated or
            corrupt data, or a decompression bomb. The message names the file and its problem.
    """
    label = _display_name(source, name)
    img, notes = decode_image(source, name=name, max_bytes=max_bytes,
                              max_pixels=max_pixels)
    original_size = img.size
    rgb = _convert(lambda: to_rgb(img), img, label)
    if max_side is not None and max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        notes.append(f"{label} was downscaled from {original_size[0]}x{original_size[1]} "
                     f"to {rgb.size[0]}x{rgb.size[1]} pixels.")
    return LoadedImage(rgb, original_size, tuple(notes))


def _array_to_uint8(arr: np.ndarray, label: str) -> np.ndarray:
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise ImageInputError(f"{label}: expected an (H, W), (H, W, 3) or (H, W, 4) array, "
                              f"got shape {tuple(arr.shape)}.")
    if arr.size == 0:
        raise ImageInputError(f"{label} has no pixels (shape {tuple(arr.shape)}).")
    if arr.dtype != np.uint8:
        arr = np.nan_to_num(arr.astype(np.float64))
        if arr.max() <= 1.0:
            arr = arr * 255.0
        arr = arr.clip(0, 255).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    return arr


#: Gray level (0..255) at or above which a pixel of an opaque mask is selected (white = object).
MASK_THRESHOLD = 128
#: Alpha (0..255) at or above which a pixel of a mask with transparency counts as painted: any
#: visible paint, so a 40 %-opaque brush (alpha about 100) and soft stroke edges are painted.
PAINT_MIN_ALPHA = 1


def load_mask(source: ImageSource, size: tuple[int, int], *, name: str | None = None,
              threshold: int = MASK_THRESHOLD, allow_empty: bool = False) -> np.ndarray:
    """Load a binary mask and fit it to an image of ``size`` (nearest-neighbour resize).

    One rule for every mask, painted in the browser or uploaded as a file:

    * a mask with transparency (an RGBA / LA / PA layer as Gradio's image editor sends, or a
      ``tRNS`` colour key) that is not fully opaque: a pixel is selected when its alpha is at
      least :data:`PAINT_MIN_ALPHA` (1), i.e. any visible paint, whatever its colour or opacity;
    * otherwise (grayscale, RGB, a fully opaque RGBA): its gray level is at least ``threshold``
      (:data:`MASK_THRESHOLD`, 128): white = selected.

    Args:
        source: file path, bytes, ``PIL.Image`` or array.
        size: (width, height) in pixels of the image the mask belongs to.
        name: name to quote in messages.
        threshold: gray level (0..255) at or above which a pixel of an opaque mask is selected.
        allow_empty: accept a mask with no selected pixel.

    Returns:
        (H, W) bool array, H and W from ``size``.

    Raises:
        ImageInputError: the mask does not decode (see :func:`load_image`), or it is empty and
            ``allow_empty`` is False (the message gives the rule and the brightest gray level).
    """
    label = _display_name(source, name)
    raw, _ = decode_image(source, name=name)
    sel = gray = None
    if raw.has_transparency_data:
        alpha = np.asarray(_convert(lambda: raw.convert("RGBA"), raw, label))[..., 3]
        if alpha.min() < 255:
            sel = alpha >= PAINT_MIN_ALPHA
    if sel is None:
        gray = _convert(lambda: raw.convert("L") if raw.mode in _GRAY_CONVERTIBLE
                        else to_rgb(raw).convert("L"), raw, label)
        sel = np.asarray(gray) >= threshold
    mask_img = Image.fromarray(sel.astype(np.uint8) * 255)
    if mask_img.size != tuple(size):
        mask_img = mask_img.resize(tuple(size), Image.Resampling.NEAREST)
    mask = np.asarray(mask_img) >= 128
    if not allow_empty and not mask.any():
        if gray is None:  # judged by alpha: nothing visible was painted
            raise ImageInputError(f"{label} is empty: paint at least a few pixels of the "
                                  f"object.")
        raise ImageInputError(f"{label} is empty: no pixel reaches gray level {threshold} "
                              f"(white = object; its brightest is {int(np.asarray(gray).max())}"
                              f"). Paint at least a few pixels of the object white.")
    return mask


def require_rgb(image: object, what: str = "image") -> Image.Image:
    """Check that a pipeline got what :func:`load_image` returns: an RGB ``PIL.Image``.

    Every upload reaches the pipelines through :func:`load_image`, so anything else is a
    caller's bug, not a user's mistake.

    Args:
        image: the object a pipeline was given.
        what: how to name it in the message ("the before image", "support image 2").

    Returns:
        ``image`` unchanged.

    Raises:
        ValueError: ``image`` is not a ``PIL.Image`` in mode "RGB".
    """
    if not isinstance(image, Image.Image) or image.mode != "RGB":
        mode = getattr(image, "mode", type(image).__name__)
        raise ValueError(f"{what} must be an RGB PIL image, got {mode!r} "
                         "(load it with engine.inputs.images.load_image)")
    return image


#: Images smaller than this (pixels) on a side get a note: too few pixels to show anything.
SMALL_IMAGE_SIDE = 32


def small_image_note(image: Image.Image, what: str = "image") -> str | None:
    """A note for an image too small to mean anything (under :data:`SMALL_IMAGE_SIDE` pixels on
    a side; the models upsample it to 224 px and answer anyway), else None.

    Args:
        image: the image as loaded (``load_image`` never upsamples, so this is its size).
        what: how to name it ("image", "reference image").

    Returns:
        "The image is very small (1×1 px); the answer may not mean anything." or None.
    """
    W, H = image.size
    if min(W, H) >= SMALL_IMAGE_SIDE:
        return None
    return f"The {what} is very small ({W}×{H} px); the answer may not mean anything."
