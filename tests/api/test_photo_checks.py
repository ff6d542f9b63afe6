"""The photo checks alone (pure functions): format by magic bytes, limits, decodability, location removal."""

from __future__ import annotations

import io

import pytest
from PIL import ExifTags, Image

from api.photo_checks import PhotoRefusedError, check_photo, describe, sniff
from schemas.events import PhotoContentType
from tests.api.images import (
    HTML,
    ORIENTATION_ROTATED,
    SVG,
    XMP_WITH_PLACE,
    encode,
    png_bomb,
    png_with_xmp,
    with_gps,
)

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000


def _refused(data: bytes, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS) -> PhotoRefusedError:
    with pytest.raises(PhotoRefusedError) as caught:
        check_photo(data, max_bytes, max_pixels)
    return caught.value


@pytest.mark.parametrize(("fmt", "content_type"), [("JPEG", PhotoContentType.JPEG), ("PNG", PhotoContentType.PNG),
                                                   ("WEBP", PhotoContentType.WEBP)])
def test_the_three_formats_pass_unchanged(fmt: str, content_type: PhotoContentType) -> None:
    data = encode(fmt)
    checked = check_photo(data, MAX_BYTES, MAX_PIXELS)
    assert checked.content_type is content_type and sniff(data) is content_type
    assert checked.data == data and not checked.location_removed
    assert (checked.width_px, checked.height_px) == (96, 64)


@pytest.mark.parametrize(("data", "detected"), [
    (SVG, "an SVG image"), (b"<svg width='1'/>", "an SVG image"), (HTML, "an HTML document"),
    (encode("GIF"), "a GIF image"), (b"just some text, named meal.jpg\n", "text"), (b"", "empty"),
    (b"%PDF-1.7 lab report", "a PDF document"), (encode("BMP"), "a BMP image"),
])
def test_other_formats_are_415_naming_what_was_found(data: bytes, detected: str) -> None:
    refused = _refused(data)
    assert refused.status_code == 415 and refused.rule == "image_format"
    assert refused.message == f"image: must be a JPEG, PNG or WebP image; the bytes are {detected}"


def test_unknown_binary_is_described_by_its_first_bytes() -> None:
    assert describe(b"\x00\x01\x02\x03garbage") == "of an unknown format (starting 00 01 02 03 67 61 72 62)"


def test_more_bytes_than_the_limit_is_413() -> None:
    data = encode("JPEG")
    refused = _refused(data, max_bytes=len(data) - 1)
    assert (refused.status_code, refused.rule) == (413, "max_bytes")
    assert check_photo(data, len(data), MAX_PIXELS).data == data


def test_more_pixels_than_the_limit_is_413_before_decoding() -> None:
    assert (_refused(encode("PNG", size=(100, 100)), max_pixels=9_999).rule) == "max_pixels"
    refused = _refused(png_bomb())  # past Pillow's own bomb limit too
    assert (refused.status_code, refused.rule) == (413, "max_pixels")
    refused = _refused(png_bomb(8_000, 6_000))  # 48 MP: under Pillow's limit, over ours
    assert refused.message == "image: is 8000 × 6000 px, more than the limit of 40,000,000 pixels"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_a_truncated_image_is_422(fmt: str) -> None:
    data = encode(fmt, size=(256, 256), noise=True)
    refused = _refused(data[: len(data) // 2])
    assert (refused.status_code, refused.rule) == (422, "decodable")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_gps_is_removed_and_orientation_kept(fmt: str) -> None:
    data = with_gps(fmt)
    assert ExifTags.IFD.GPSInfo in Image.open(io.BytesIO(data)).getexif()
    checked = check_photo(data, MAX_BYTES, MAX_PIXELS)
    assert checked.location_removed and checked.data != data
    with Image.open(io.BytesIO(checked.data)) as stored:
        exif = stored.getexif()
        assert stored.format == fmt and stored.size == (96, 64)
    assert ExifTags.IFD.GPSInfo not in exif and exif.get_ifd(ExifTags.IFD.GPSInfo) == {}
    assert exif[ExifTags.Base.Orientation] == ORIENTATION_ROTATED and exif[ExifTags.Base.Make] == "TestPhone"


def test_xmp_naming_a_place_is_removed() -> None:
    data = png_with_xmp(XMP_WITH_PLACE)
    checked = check_photo(data, MAX_BYTES, MAX_PIXELS)
    assert checked.location_removed and b"GPSLatitude" not in checked.data and b"GPSLatitude" in data
    harmless = png_with_xmp(b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>')
    assert check_photo(harmless, MAX_BYTES, MAX_PIXELS).data == harmless
