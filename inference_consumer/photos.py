"""A meal event's photo: read from the object store, checked against its reference, decoded to the model input.

Every way a photo can be wrong ends in PhotoRejectedError with a dead-letter reason; nothing else is raised for a
bad photo. The pixel count is checked from the header, before any pixel is decoded, so a small file that
inflates to gigabytes (a decompression bomb) costs nothing. Only the three formats PhotoRef allows are tried.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from inference_consumer.dead_letters import DeadLetterReason
from inference_consumer.models.preprocess import crop_for_model
from schemas.events import PhotoContentType, PhotoRef
from vitalstream.object_store import InvalidObjectKeyError, ObjectNotFoundError, ObjectStore

#: More than any phone camera's frame (a 200 MP sensor bins to 50 MP photos by default); a 10 MB file that
#: claims more is a bomb. Pillow's own limit (Image.MAX_IMAGE_PIXELS, ~89 MP) only warns below twice that.
MAX_PIXELS = 50_000_000
_FORMATS = {PhotoContentType.JPEG: "JPEG", PhotoContentType.PNG: "PNG", PhotoContentType.WEBP: "WEBP"}


class PhotoRejectedError(Exception):
    """The photo cannot be analysed; `reason` is its dead-letter reason, the message says what was found."""

    def __init__(self, reason: DeadLetterReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


def read_photo(store: ObjectStore, ref: PhotoRef) -> bytes:
    """The object's bytes, if its size and sha256 are the reference's."""
    try:
        size = store.size(ref.object_key)
        if size != ref.size_bytes:  # checked before reading: an oversized object is never loaded
            raise PhotoRejectedError(DeadLetterReason.SIZE_MISMATCH,
                                f"photo.size_bytes is {ref.size_bytes}, object {ref.object_key!r} has {size} bytes")
        data = store.get(ref.object_key)
    except (ObjectNotFoundError, InvalidObjectKeyError) as err:
        raise PhotoRejectedError(DeadLetterReason.MISSING_OBJECT,
                            f"photo.object_key {ref.object_key!r}: no object ({err})") from err
    digest = hashlib.sha256(data).hexdigest()
    if digest != ref.sha256:
        raise PhotoRejectedError(DeadLetterReason.HASH_MISMATCH,
                            f"photo.sha256 is {ref.sha256}, object {ref.object_key!r} hashes to {digest}")
    return data


def decode_photo(data: bytes, content_type: PhotoContentType) -> NDArray[np.uint8]:
    """Upright, cropped RGB pixels [224, 224, 3] (inference_consumer.models.preprocess) from encoded bytes."""
    try:
        with Image.open(io.BytesIO(data), formats=list(_FORMATS.values())) as image:
            # A multi-picture JPEG (MPO, what many phones save) is a JPEG whose first picture is the photo.
            found = "JPEG" if image.format == "MPO" else image.format
            if found != _FORMATS[content_type]:
                raise PhotoRejectedError(DeadLetterReason.CONTENT_TYPE_MISMATCH,
                                    f"photo.content_type is {content_type.value}, the bytes are {image.format}")
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise PhotoRejectedError(DeadLetterReason.DECOMPRESSION_BOMB,
                                    f"{width} × {height} px is more than {MAX_PIXELS:,} pixels")
            image.load()
            return crop_for_model(image)
    except Image.DecompressionBombError as err:
        raise PhotoRejectedError(DeadLetterReason.DECOMPRESSION_BOMB, str(err)) from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        # Pillow reports truncated or corrupt data as OSError, and some malformed headers as SyntaxError.
        raise PhotoRejectedError(DeadLetterReason.NOT_AN_IMAGE, f"photo does not decode as "
                            f"{content_type.value}: {err}") from err


def load_photo(store: ObjectStore, ref: PhotoRef) -> NDArray[np.uint8]:
    """read_photo, then decode_photo."""
    return decode_photo(read_photo(store, ref), ref.content_type)
