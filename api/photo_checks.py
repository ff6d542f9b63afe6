"""Checks of an uploaded meal photo, in the order that keeps a hostile file cheap: bytes → format → pixels → decode.

Pure functions (no I/O). The format comes from the file's magic bytes only; a declared content type or file name
never decides. The pixel count is read from the header before any pixel is decoded, so a few-KB file that would
inflate to gigabytes (a decompression bomb) is refused for its header. Location metadata (the EXIF GPS directory,
XMP or IPTC that mention a place) is removed by re-encoding with the rest of the EXIF (orientation included);
a photo without any is kept byte for byte.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

from PIL import ExifTags, Image, UnidentifiedImageError

from schemas.events import PhotoContentType

FIELD = "image"
#: Pillow's format name and the object key's extension, per accepted type.
_PILLOW_FORMAT = {PhotoContentType.JPEG: "JPEG", PhotoContentType.PNG: "PNG", PhotoContentType.WEBP: "WEBP"}
EXTENSIONS = {PhotoContentType.JPEG: "jpg", PhotoContentType.PNG: "png", PhotoContentType.WEBP: "webp"}
#: Magic bytes of formats we refuse, to say what was sent (first match wins; checked after the accepted ones).
_REFUSED_SIGNATURES: tuple[tuple[re.Pattern[bytes], str], ...] = (
    (re.compile(rb"^GIF8[79]a"), "a GIF image"),
    (re.compile(rb"^\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*(<!doctype svg[^>]*>\s*)?<svg", re.I | re.S), "an SVG image"),
    (re.compile(rb"^\s*(<!doctype html|<html|<head|<body|<script)", re.I), "an HTML document"),
    (re.compile(rb"^\s*<\?xml", re.I), "an XML document"),
    (re.compile(rb"^%PDF-"), "a PDF document"),
    (re.compile(rb"^BM"), "a BMP image"),
    (re.compile(rb"^(II\*\x00|MM\x00\*)"), "a TIFF image"),
    (re.compile(rb"^....ftyp(heic|heix|mif1|msf1|hevc|avif)", re.S), "a HEIF/AVIF image"),
    (re.compile(rb"^\x00\x00\x01\x00"), "an ICO image"),
    (re.compile(rb"^PK\x03\x04"), "a ZIP archive"),
)
#: XMP/IPTC words that name a place; their presence is enough to drop the whole block (it holds no orientation).
_LOCATION_WORDS = re.compile(rb"gps|location|city|country|province|state|sublocation|latitude|longitude", re.I)
#: The JPEG APP13 segment ("Photoshop 3.0") that carries IPTC records, location fields among them.
_IPTC_MARKER = b"Photoshop 3.0\x00"
_MAKER_NOTE = 0x927C
#: Quality when a lossy WebP (or an MPO JPEG) must be re-encoded; plain JPEGs keep their own quantisation tables.
_WEBP_QUALITY = 90
_JPEG_QUALITY = 95


class PhotoRefusedError(Exception):
    """The photo is refused: `status_code` (413, 415 or 422), `rule`, and a message naming the field."""

    def __init__(self, status_code: int, rule: str, message: str) -> None:
        super().__init__(f"{FIELD}: {message}")
        self.status_code = status_code
        self.rule = rule
        self.message = f"{FIELD}: {message}"


@dataclass(frozen=True)
class CheckedPhoto:
    """What to store: `data` is the upload itself, or its re-encoding without location metadata."""

    data: bytes
    content_type: PhotoContentType
    width_px: int
    height_px: int
    location_removed: bool

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.content_type]


def sniff(data: bytes) -> PhotoContentType:
    """The type the magic bytes say; PhotoRefusedError 415 naming what was found for anything but JPEG, PNG, WebP."""
    if data.startswith(b"\xff\xd8\xff"):
        return PhotoContentType.JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PhotoContentType.PNG
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return PhotoContentType.WEBP
    raise PhotoRefusedError(415, "image_format", f"must be a JPEG, PNG or WebP image; the bytes are {describe(data)}")


def describe(data: bytes) -> str:
    """A few words on what `data` looks like, for error messages."""
    if not data:
        return "empty"
    head = data[:1024]
    for pattern, name in _REFUSED_SIGNATURES:
        if pattern.match(head):
            return name
    try:
        text = head.decode("utf-8") if len(data) <= len(head) else head[:-4].decode("utf-8", "ignore")
    except UnicodeDecodeError:
        text = ""
    if text and all(c.isprintable() or c.isspace() for c in text):
        return "text"
    return f"of an unknown format (starting {data[:8].hex(' ')})"


def check_photo(data: bytes, max_bytes: int, max_pixels: int) -> CheckedPhoto:
    """Every check, in order; PhotoRefusedError on the first that fails."""
    if len(data) > max_bytes:
        raise PhotoRefusedError(413, "max_bytes", f"is {len(data):,} bytes, more than the limit of {max_bytes:,}")
    content_type = sniff(data)
    pillow_format = _PILLOW_FORMAT[content_type]
    try:
        with Image.open(io.BytesIO(data), formats=[pillow_format]) as image:
            width, height = image.size  # from the header: nothing is decoded yet
            if width * height > max_pixels:
                raise PhotoRefusedError(413, "max_pixels", f"is {width} × {height} px, more than the limit of "
                                                      f"{max_pixels:,} pixels")
            image.load()
            stripped = _without_location(image, content_type, lossless_webp=data[12:16] == b"VP8L")
    except Image.DecompressionBombError as error:
        raise PhotoRefusedError(413, "max_pixels", f"has too many pixels to decode safely ({error})") from error
    except PhotoRefusedError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
        # Pillow reports truncated or corrupt data as OSError, and some malformed headers as SyntaxError.
        raise PhotoRefusedError(422, "decodable",
                                f"is not a whole, decodable {pillow_format} image ({error})") from error
    if stripped is None:
        return CheckedPhoto(data, content_type, width, height, location_removed=False)
    if len(stripped) > max_bytes:
        raise PhotoRefusedError(413, "max_bytes", f"is {len(stripped):,} bytes once its location is removed, more than "
                                             f"the limit of {max_bytes:,}")
    return CheckedPhoto(stripped, content_type, width, height, location_removed=True)


def has_location(image: Image.Image) -> bool:
    """EXIF with a GPS directory, or XMP/IPTC that mention a place."""
    if ExifTags.IFD.GPSInfo in image.getexif():
        return True
    xmp = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8", "replace")
    if isinstance(xmp, bytes) and _LOCATION_WORDS.search(xmp):
        return True
    return any(_IPTC_MARKER in segment and _LOCATION_WORDS.search(segment) for segment in _app13_segments(image))


def _app13_segments(image: Image.Image) -> list[bytes]:
    applist: list[tuple[str, bytes]] = getattr(image, "applist", [])
    return [segment for marker, segment in applist if marker == "APP13"]


def _without_location(image: Image.Image, content_type: PhotoContentType, lossless_webp: bool) -> bytes | None:
    """The image re-encoded with EXIF minus GPS (and maker notes), no XMP, no IPTC; None if it has no location."""
    if not has_location(image):
        return None
    # A fresh Exif: once a GPS directory has been read (get_ifd), Pillow writes it back even after `del`.
    exif = Image.Exif()
    raw_exif = image.info.get("exif")
    if isinstance(raw_exif, bytes) and raw_exif:
        exif.load(raw_exif)
    exif.pop(ExifTags.IFD.GPSInfo, None)
    if ExifTags.IFD.Exif in exif:
        # Maker notes are vendor-opaque and some vendors keep a position in them.
        exif.get_ifd(ExifTags.IFD.Exif).pop(_MAKER_NOTE, None)
    options: dict[str, Any] = {"exif": exif.tobytes() if len(exif) else b""}
    icc_profile = image.info.get("icc_profile")
    if icc_profile:
        options["icc_profile"] = icc_profile
    buffer = io.BytesIO()
    if content_type is PhotoContentType.JPEG:
        # "keep": the original quantisation tables and subsampling, so the re-encoding loses as little as it can
        # (Pillow allows it for plain JPEG only, not for multi-picture MPO files).
        quality: dict[str, Any] = ({"quality": "keep", "subsampling": "keep"} if image.format == "JPEG"
                                   else {"quality": _JPEG_QUALITY})
        image.save(buffer, "JPEG", comment=b"", **quality, **options)
    elif content_type is PhotoContentType.PNG:
        image.save(buffer, "PNG", **options)  # text chunks (where PNG keeps XMP) are not written
    else:
        image.save(buffer, "WEBP", lossless=lossless_webp, quality=100 if lossless_webp else _WEBP_QUALITY, **options)
    return buffer.getvalue()
