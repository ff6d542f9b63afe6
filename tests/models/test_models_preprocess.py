"""The client-side crop: upright, shorter side 256, centre 224 × 224, RGB uint8."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from inference_consumer.models.preprocess import SIZE_PX, crop_for_model, photo_to_model_input


def _jpeg(image: Image.Image, **save: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95, **save)
    return buffer.getvalue()


def test_landscape_photo_keeps_its_centre() -> None:
    image = Image.new("RGB", (600, 300), (0, 0, 255))
    image.paste((255, 0, 0), (250, 100, 350, 200))  # a red square in the middle
    pixels = crop_for_model(image)
    assert pixels.shape == (SIZE_PX, SIZE_PX, 3) and pixels.dtype == np.uint8
    assert tuple(pixels[112, 112]) == (255, 0, 0)
    assert tuple(pixels[5, 5]) == (0, 0, 255)


def test_grey_and_rgba_become_rgb() -> None:
    assert crop_for_model(Image.new("L", (300, 300), 7)).shape == (SIZE_PX, SIZE_PX, 3)
    assert crop_for_model(Image.new("RGBA", (300, 300), (1, 2, 3, 4)))[0, 0].tolist() == [1, 2, 3]


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (400, 200), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 200, 200))  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": the left half ends up on top
    pixels = photo_to_model_input(_jpeg(image, exif=exif))
    assert pixels[10, 112].mean() > 200 and pixels[-10, 112].mean() < 50


def test_a_tiny_photo_is_scaled_up() -> None:
    assert crop_for_model(Image.new("RGB", (10, 30), (9, 9, 9))).shape == (SIZE_PX, SIZE_PX, 3)


def test_bytes_that_are_no_image_are_refused() -> None:
    with pytest.raises(ValueError, match="photo: not a decodable image"):
        photo_to_model_input(b"GIF89a but not really")
