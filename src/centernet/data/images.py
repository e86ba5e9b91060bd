"""Reading a user's image file: its header (size, orientation) and its pixels as 8-bit RGB.

Training, evaluation, prediction and ``centernet check`` all read images here, so an image
the check passes is one the loaders can read. What a file becomes:

- **Orientation.** Images are read as a viewer shows them: the EXIF orientation of a JPEG,
  WebP or PNG (its ``eXIf`` chunk before the pixels) is applied, as ``cv2.imread`` does.
  :func:`read_image_header` gives the size in that displayed frame, so box checks and
  normalised YOLO coordinates use the same width and height as the decoded pixels. (cv2 is
  told to ignore the tag and it is applied here, because which formats cv2 turns depends on
  its version; TIFF is left to the decoders, which turn it themselves.)
- **Depth.** 16-bit samples are scaled to 8 bits (``v * 255 / 65535``, rounded), not clipped.
- **Channels.** Grey, grey + alpha, palette and CMYK images become RGB. An alpha channel is
  dropped: the colour values are kept as stored, not composited, as ``cv2.imread``, ultralytics
  and the original CenterNet read them.
- **Size.** An image of more than :func:`max_image_pixels` pixels (100 megapixels unless
  ``CENTERNET_MAX_IMAGE_PIXELS`` says otherwise) is refused from its header, before decoding.
- **Integrity.** An empty file, a JPEG without an EOI marker after its image data and a PNG
  without its IEND chunk are refused (cv2 decodes a truncated JPEG to a grey-filled image with
  only a warning); data appended after the end marker (motion photos) is fine.
- **Paths.** Python reads the file and cv2 decodes it from memory, so names with spaces or
  non-ASCII characters work on every platform.

Every refusal is an :class:`ImageFileError`: a :class:`CenterNetError` with one line naming the
file and what is wrong, and the ``centernet check`` problem kind.
"""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..errors import CenterNetError

DEFAULT_MAX_PIXELS = 100_000_000
MAX_PIXELS_ENV = "CENTERNET_MAX_IMAGE_PIXELS"
EXIF_ORIENTATION = 0x0112  # the EXIF tag; values 1..8, 1 = stored upright
JPEG_SOI, JPEG_EOI = b"\xff\xd8\xff", b"\xff\xd9"
JPEG_SOS, JPEG_EOI_MARKER = 0xDA, 0xD9
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_IEND = b"IEND\xaeB`\x82"  # chunk type + its CRC: the end of a complete PNG
ORIENTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP"})  # Pillow's names; MPO: multi-picture JPEGs (phones)
# 3 colour channels, 16-bit kept (scaled here, rounded), EXIF orientation left to _apply_orientation.
DECODE_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH | cv2.IMREAD_IGNORE_ORIENTATION
PLAIN_DECODE_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION  # float images: cv2's own 8-bit conversion

_PILLOW_LIMIT = threading.Lock()  # guards the temporary change of Pillow's global pixel limit


class ImageFileError(CenterNetError):
    """An image file that cannot be used; ``kind`` is its ``centernet check`` problem kind."""

    def __init__(self, path: str | Path, kind: str, reason: str):
        super().__init__(f"cannot read image {str(path)!r}: {reason}")
        self.path, self.kind, self.reason = str(path), kind, reason


@dataclass(frozen=True)
class ImageHeader:
    """What the header says, in the displayed frame (EXIF orientation applied)."""

    width: int
    height: int
    orientation: int = 1  # EXIF orientation 1..8; 5..8 swap the stored width and height


def max_image_pixels() -> int:
    """The pixel limit: ``CENTERNET_MAX_IMAGE_PIXELS`` (e.g. ``4e8``) when set, else 100 megapixels."""
    value = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not value:
        return DEFAULT_MAX_PIXELS
    try:
        limit = int(float(value))
    except (ValueError, OverflowError):
        limit = 0
    if limit <= 0:
        raise CenterNetError(f"{MAX_PIXELS_ENV}={value!r} is not a positive number of pixels")
    return limit


def read_image_header(path: str | Path) -> ImageHeader:
    """Size and orientation from the header, without decoding (Pillow, lazily).

    A format Pillow does not know is decoded by cv2 to learn its size. Raises
    :class:`ImageFileError` for a missing, empty or unreadable file.
    """
    path = Path(path)
    header = _pillow_header(path)
    if header is not None:
        return header
    image = _decode(_read_bytes(path), path)
    return ImageHeader(image.shape[1], image.shape[0])


def read_image_rgb(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB as displayed; :class:`ImageFileError` naming the file when it cannot be used.

    ``max_pixels`` defaults to :func:`max_image_pixels`; it is checked from the header
    before anything is decoded (after decoding for formats Pillow does not know, where
    cv2's own limit of 2**30 pixels guards the decoder).
    """
    path = Path(path)
    limit = max_pixels if max_pixels is not None else max_image_pixels()
    header = _pillow_header(path)
    if header is not None:
        _check_pixels(path, header.width, header.height, limit)
    data = _read_bytes(path)
    cut = truncation(data)
    if cut:
        raise ImageFileError(path, "truncated_image", cut)
    image = _apply_orientation(_decode(data, path), header.orientation if header else 1)
    if header is None:
        _check_pixels(path, image.shape[1], image.shape[0], limit)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def truncation(data: bytes) -> str:
    """Why a JPEG or PNG is cut short, or ``""`` (complete, or another format, left to its decoder)."""
    if data.startswith(JPEG_SOI) and data.find(JPEG_EOI, _jpeg_scan_start(data)) < 0:
        return "JPEG has no EOI marker FF D9 after its image data (file cut short)"
    if data.startswith(PNG_SIGNATURE) and PNG_IEND not in data:
        return "PNG has no IEND chunk (file cut short)"
    return ""


def _jpeg_scan_start(data: bytes) -> int:
    """Where the first scan's compressed data starts, found by walking the marker segments.

    Walking matters: an EXIF thumbnail inside APP1 has an EOI of its own. Inside a scan a
    0xFF byte is always followed by 0x00 or a restart marker, so the next FF D9 is the real
    end. Returns ``len(data)`` when the file ends inside the headers (cut short), and 2 when
    the segments are malformed (the decoder will judge).
    """
    offset = 2
    while offset + 4 <= len(data):
        if data[offset] != 0xFF:
            return 2
        marker = data[offset + 1]
        if marker == 0xFF:  # fill byte before a marker
            offset += 1
        elif marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            offset += 2
        elif marker == JPEG_EOI_MARKER:
            return offset
        else:
            length = int.from_bytes(data[offset + 2 : offset + 4], "big")
            if marker == JPEG_SOS:
                return offset + 2 + length
            offset += 2 + length
    return len(data)


def _pillow_header(path: Path) -> ImageHeader | None:
    """The header as Pillow reads it, or None when Pillow cannot (unknown format, corrupt, missing)."""
    with _PILLOW_LIMIT, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's warnings about odd metadata; the decode judges the file
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # max_image_pixels() applies instead
        try:
            with Image.open(path) as im:
                width, height = im.size
                orientation = _orientation(im)
        except Exception:  # noqa: BLE001 - any parser failure means "Pillow cannot read it"
            return None
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    if orientation >= 5:  # turned by 90 degrees: the displayed sides are swapped
        width, height = height, width
    return ImageHeader(width, height, orientation)


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation 1..8 of an opened image; 1 when absent, invalid, unreadable or not ours to apply."""
    if im.format not in ORIENTED_FORMATS:
        return 1
    if im.format == "PNG" and "exif" not in im.info:
        return 1  # no eXIf before the pixels; Pillow would decode the whole image to look after them
    try:
        value = int(im.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - corrupt EXIF: no orientation, as cv2 treats it
        return 1
    return value if 1 <= value <= 8 else 1


def _read_bytes(path: Path) -> bytes:
    """The file's bytes; ImageFileError when it is missing, a folder, unreadable or empty."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageFileError(path, "unreadable_image", "the file does not exist") from None
    except IsADirectoryError:
        raise ImageFileError(path, "unreadable_image", "it is a folder, not an image file") from None
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ImageFileError(path, "unreadable_image", f"cannot open the file ({reason})") from None
    if not data:
        raise ImageFileError(path, "unreadable_image", "empty file (0 bytes)")
    return data


def _decode(data: bytes, path: Path) -> np.ndarray:
    """(H, W, 3) uint8 BGR as stored (no orientation applied); 16-bit samples scaled to 8 bits."""
    buffer = np.frombuffer(data, np.uint8)
    try:
        image = cv2.imdecode(buffer, DECODE_FLAGS)
        if image is not None and image.dtype not in (np.uint8, np.uint16):
            image = cv2.imdecode(buffer, PLAIN_DECODE_FLAGS)
    except cv2.error:
        image = None
    if image is None:
        raise ImageFileError(path, "unreadable_image", "cv2 cannot decode it (not an image, or corrupt)")
    if image.dtype == np.uint16:
        image = cv2.convertScaleAbs(image, alpha=255 / 65535)  # rounded; 65535 -> 255
    return image


def _apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """The stored pixels turned the way EXIF ``orientation`` says they are displayed."""
    if orientation == 2:
        return cv2.flip(image, 1)
    if orientation == 3:
        return cv2.rotate(image, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(image, 0)
    if orientation == 5:
        return cv2.transpose(image)
    if orientation == 6:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.flip(cv2.transpose(image), -1)
    if orientation == 8:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return image


def _check_pixels(path: Path, width: int, height: int, limit: int) -> None:
    if width * height > limit:
        raise ImageFileError(
            path, "image_too_large",
            f"{width}x{height} is {width * height / 1e6:.1f} megapixels, over the limit of {limit / 1e6:g} "
            f"(set {MAX_PIXELS_ENV} to allow more)",
        )


__all__ = ["DEFAULT_MAX_PIXELS", "ImageFileError", "ImageHeader", "max_image_pixels", "read_image_header",
           "read_image_rgb", "truncation"]
