"""Photos from the object store: checked against their reference, decoded upright, and every bad one named."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference_consumer.dead_letters import DeadLetterReason
from inference_consumer.models.preprocess import crop_for_model, photo_to_model_input
from inference_consumer.photos import PhotoRejectedError, decode_photo, load_photo
from producers.photos import photo_ref, render_meal_photo
from schemas.events import PhotoContentType, PhotoRef
from vitalstream.object_store import LocalObjectStore

EXIF_ORIENTATION = 0x0112
ROTATED_90_CW = 6  # EXIF: the stored frame must be turned 90° clockwise to be upright


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "objects")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width × height: what a decompression bomb looks like before it is inflated."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(
        b"IEND", b"")


def _rejected(store: LocalObjectStore, ref: PhotoRef) -> DeadLetterReason:
    with pytest.raises(PhotoRejectedError) as caught:
        load_photo(store, ref)
    return caught.value.reason


def test_a_good_photo_becomes_the_model_input_the_models_expect(store: LocalObjectStore) -> None:
    data = render_meal_photo(seed=3)
    store.put("meal-photos/u/a.jpg", data)
    pixels = load_photo(store, photo_ref("meal-photos/u/a.jpg", data))
    assert pixels.shape == (224, 224, 3) and pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels, photo_to_model_input(data))


def test_the_photo_is_turned_upright_by_its_exif_orientation() -> None:
    rng = np.random.default_rng(0)
    stored = Image.fromarray(rng.integers(0, 256, size=(240, 400, 3), dtype=np.uint8))  # landscape as stored
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = ROTATED_90_CW
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", quality=95, exif=exif)
    pixels = decode_photo(buffer.getvalue(), PhotoContentType.JPEG)
    with Image.open(io.BytesIO(buffer.getvalue())) as decoded:
        decoded.load()
        upright = decoded.transpose(Image.Transpose.ROTATE_270)  # 90° clockwise
        upright.info.pop("exif", None)
        expected = crop_for_model(upright)
    np.testing.assert_array_equal(pixels, expected)
    unrotated = crop_for_model(Image.open(io.BytesIO(buffer.getvalue())).transpose(Image.Transpose.ROTATE_90))
    assert not np.array_equal(pixels, unrotated)


def test_a_multi_picture_jpeg_from_a_phone_is_its_first_picture() -> None:
    rng = np.random.default_rng(1)
    first, second = (Image.fromarray(rng.integers(0, 256, size=(240, 320, 3), dtype=np.uint8)) for _ in range(2))
    buffer = io.BytesIO()
    first.save(buffer, format="MPO", save_all=True, append_images=[second], quality=95)
    with Image.open(io.BytesIO(buffer.getvalue())) as opened:
        assert opened.format == "MPO" and getattr(opened, "n_frames", 1) == 2
        opened.load()
        expected = crop_for_model(opened)
    np.testing.assert_array_equal(decode_photo(buffer.getvalue(), PhotoContentType.JPEG), expected)
    with pytest.raises(PhotoRejectedError) as caught:
        decode_photo(buffer.getvalue(), PhotoContentType.PNG)
    assert caught.value.reason is DeadLetterReason.CONTENT_TYPE_MISMATCH


def test_a_missing_object_or_an_unsafe_key_is_missing_object(store: LocalObjectStore) -> None:
    data = render_meal_photo(seed=1)
    assert _rejected(store, photo_ref("meal-photos/u/nowhere.jpg", data)) is DeadLetterReason.MISSING_OBJECT
    assert _rejected(store, photo_ref("meal-photos/../../etc/passwd", data)) is DeadLetterReason.MISSING_OBJECT


def test_size_and_hash_are_checked_before_decoding(store: LocalObjectStore) -> None:
    data = render_meal_photo(seed=2)
    store.put("p/a.jpg", data)
    ref = photo_ref("p/a.jpg", data)
    assert _rejected(store, ref.model_copy(update={"size_bytes": len(data) + 1})) is DeadLetterReason.SIZE_MISMATCH
    assert _rejected(store, ref.model_copy(update={"sha256": "0" * 64})) is DeadLetterReason.HASH_MISMATCH
    store.put("p/b.jpg", data[:-1] + bytes([data[-1] ^ 1]))  # same size, one bit flipped
    assert _rejected(store, ref.model_copy(update={"object_key": "p/b.jpg"})) is DeadLetterReason.HASH_MISMATCH


@pytest.mark.parametrize(("data", "content_type", "reason"), [
    (b"this is not an image at all", PhotoContentType.JPEG, DeadLetterReason.NOT_AN_IMAGE),
    (render_meal_photo(seed=4)[:3000], PhotoContentType.JPEG, DeadLetterReason.NOT_AN_IMAGE),  # truncated
    (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", PhotoContentType.PNG, DeadLetterReason.NOT_AN_IMAGE),  # not allowed
    (png_header_only(64, 64), PhotoContentType.JPEG, DeadLetterReason.CONTENT_TYPE_MISMATCH),
    (png_header_only(10_000, 6_000), PhotoContentType.PNG, DeadLetterReason.DECOMPRESSION_BOMB),  # ours
    (png_header_only(20_000, 20_000), PhotoContentType.PNG, DeadLetterReason.DECOMPRESSION_BOMB),  # Pillow's
], ids=["text", "truncated", "gif", "png-as-jpeg", "60-megapixels", "400-megapixels"])
def test_bad_bytes_are_rejected_with_their_reason(store: LocalObjectStore, data: bytes,
                                                   content_type: PhotoContentType, reason: DeadLetterReason) -> None:
    store.put("bad/x", data)
    with pytest.raises(PhotoRejectedError) as caught:
        load_photo(store, photo_ref("bad/x", data, content_type))
    assert caught.value.reason is reason, caught.value
    assert str(caught.value).startswith(reason.value)
