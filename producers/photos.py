"""Synthetic meal photos (a plate with a few coloured foods on a table) and the reference a meal event carries.

The bytes never travel through Kafka: a meal event carries a PhotoRef (key, sha256, type, size) and the image
lies in the object store (vitalstream.object_store).
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from schemas.events import PhotoContentType, PhotoRef

#: The size image classifiers take; bigger would only cost rendering time and disk.
PHOTO_SIZE_PX = 224
JPEG_QUALITY = 85

_TABLES = ((120, 84, 52), (150, 110, 75), (190, 190, 185), (70, 70, 75), (210, 200, 180))
_FOODS = (
    (240, 235, 220),  # rice
    (90, 150, 60),  # greens
    (200, 50, 40),  # tomato
    (130, 75, 40),  # meat
    (230, 190, 60),  # egg, corn
    (220, 140, 60),  # carrot, salmon
    (170, 120, 70),  # bread
)


def render_meal_photo(seed: int, size_px: int = PHOTO_SIZE_PX) -> bytes:
    """A JPEG of a plate with 2–5 food portions; the same seed gives the same bytes."""
    rng = np.random.default_rng(seed)
    table = _TABLES[int(rng.integers(len(_TABLES)))]
    image = Image.new("RGB", (size_px, size_px), table)
    draw = ImageDraw.Draw(image)
    centre = size_px / 2 + rng.uniform(-0.08, 0.08, size=2) * size_px
    radius = size_px * rng.uniform(0.36, 0.46)
    draw.ellipse([*(centre - radius), *(centre + radius)], fill=(245, 245, 242), outline=(215, 215, 210), width=4)
    for _ in range(int(rng.integers(2, 6))):
        colour = np.array(_FOODS[int(rng.integers(len(_FOODS)))]) + rng.integers(-15, 16, size=3)
        angle, distance = rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.5) * radius
        middle = centre + distance * np.array([np.cos(angle), np.sin(angle)])
        half = rng.uniform(0.15, 0.32, size=2) * radius
        draw.ellipse([*(middle - half), *(middle + half)], fill=tuple(int(c) for c in np.clip(colour, 0, 255)))
    # Photos are never crisp vector shapes; blur and sensor noise keep a classifier from keying on edges.
    image = image.filter(ImageFilter.BoxBlur(1))
    noisy = np.asarray(image, dtype=np.int16) + rng.integers(-6, 7, size=(size_px, size_px, 3), dtype=np.int16)
    image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def photo_ref(object_key: str, data: bytes, content_type: PhotoContentType = PhotoContentType.JPEG) -> PhotoRef:
    """The reference a meal event carries for `data` stored under `object_key`."""
    return PhotoRef(object_key=object_key, sha256=hashlib.sha256(data).hexdigest(), content_type=content_type,
                    size_bytes=len(data))
