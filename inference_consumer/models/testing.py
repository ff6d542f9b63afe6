"""What the model tests share: the real weights and photos, and repositories built from them.

tests/models/conftest.py turns this into a session fixture; it lives here so test modules can import its type.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from inference_consumer.models import build
from inference_consumer.models.build import BuildReport
from inference_consumer.models.preprocess import photo_to_model_input
from vitalstream.config import Settings


@dataclass(frozen=True)
class BuiltModels:
    """Every variant built into one folder (`<out>/local`, `prod`, `gpu`) from the cached downloads."""

    settings: Settings
    report: BuildReport
    photos: Path

    @classmethod
    def build(cls, settings: Settings, out: Path) -> BuiltModels:
        report = build.build(settings, {name: out / name for name in ("local", "prod", "gpu")})
        return cls(settings, report, build.photos_dir(settings))

    @property
    def local(self) -> Path:
        return self.report.repositories["local"]

    @property
    def prod(self) -> Path:
        return self.report.repositories["prod"]

    @property
    def gpu(self) -> Path:
        return self.report.repositories["gpu"]

    def photo(self, name: str) -> NDArray[np.uint8]:
        """A fetched photo as the model input: [224, 224, 3] uint8."""
        return photo_to_model_input((self.photos / name).read_bytes())

    def photo_names(self, prefix: str) -> list[str]:
        names = sorted(p.name for p in self.photos.glob(f"{prefix}*"))
        if not names:
            raise FileNotFoundError(f"no {prefix}* photo in {self.photos}")
        return names
