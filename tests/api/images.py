"""Image files for the photo tests: real encodings by Pillow and hostile files by hand, made on the spot; and a real
photo (scikit-image's coffee)."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import numpy as np
from PIL import ExifTags, Image

from inference_consumer.models import build, fetch
from vitalstream.config import Settings

#: Where the test photos claim to have been taken (Seoul City Hall), degrees, minutes, seconds.
LATITUDE = (37.0, 33.0, 59.94)
LONGITUDE = (126.0, 58.0, 42.12)
#: EXIF orientation 6: the camera was turned; viewers rotate the pixels 90° clockwise.
ORIENTATION_ROTATED = 6


def encode(fmt: str, size: tuple[int, int] = (96, 64), noise: bool = False, **options: Any) -> bytes:
    """An RGB image (a gradient, or noise that compresses badly) in `fmt` ("JPEG", "PNG", "WEBP", "GIF")."""
    width, height = size
    if noise:
        pixels = np.random.default_rng(7).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    else:
        ramp = np.linspace(0, 255, width, dtype=np.uint8)
        pixels = np.stack([np.tile(ramp, (height, 1)), np.full((height, width), 120, np.uint8),
                           np.tile(ramp[::-1], (height, 1))], axis=-1)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **options)
    return buffer.getvalue()


def located_exif() -> Image.Exif:
    """EXIF as a phone writes it: make, orientation, and a GPS directory."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "TestPhone"
    exif[ExifTags.Base.Orientation] = ORIENTATION_ROTATED
    exif[ExifTags.IFD.GPSInfo] = {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: LATITUDE,
                                  ExifTags.GPS.GPSLongitudeRef: "E", ExifTags.GPS.GPSLongitude: LONGITUDE}
    return exif


def with_gps(fmt: str = "JPEG") -> bytes:
    return encode(fmt, exif=located_exif())


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A real, valid 1-bit PNG of width × height black pixels: ~110 KB that would inflate to ~900 megapixels."""
    row = b"\x00" + b"\x00" * ((width + 7) // 8)  # filter byte "none", then the packed pixels
    compressor = zlib.compressobj(9)
    chunks = [compressor.compress(row * 1000) for _ in range(height // 1000)]
    idat = b"".join(chunks) + compressor.compress(row * (height % 1000)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def png_with_xmp(xmp: bytes) -> bytes:
    """A PNG carrying an XMP packet in an iTXt chunk, as photo editors write it."""
    png = encode("PNG")
    itxt = _png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + xmp)
    end = png.rindex(b"IEND") - 4
    return png[:end] + itxt + png[end:]


SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
HTML = b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>"
XMP_WITH_PLACE = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
                  b'<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="37,33.999N"/>'
                  b"</rdf:RDF></x:xmpmeta>")


def coffee_photo() -> bytes:
    """scikit-image's coffee photo (an espresso cup on a saucer), fetched with the model weights (cached)."""
    settings = Settings()
    fetch.fetch(settings)  # a no-op once cached
    return (build.photos_dir(settings) / "coffee.png").read_bytes()
