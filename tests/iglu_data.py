"""iglu's 5-subject CGM example (the reference data of the metric tests), fetched by name, version and hash.

The same file as iglu 4.3's `example_data_5_subject` (GPL-2, so not shipped here) travels in the source archive
of PyPI's `iglu_python` 0.4.3, as its test data; the models' fetch machinery downloads it (hash-checked), keeps
only the CSV (hash-checked too) in the stack's cache and drops the archive. VITALSTREAM_IGLU_EXAMPLE_CSV points at
a copy instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from inference_consumer.models.fetch import PinnedFile, PyPIWheel, cache_dir, fetch
from vitalstream.config import Settings

IGLU_EXAMPLE = PyPIWheel(
    "iglu_python", "0.4.3", "7ece97cd50fbf0eae95572c830908225cbfecc37d2ef4475a8cf02d3462bf4dd",
    (PinnedFile("iglu_python-0.4.3/tests/data/example_data_5_subject.csv", "data/iglu_example_data_5_subject.csv",
                "adf9eb9e21543c8d6493c6be3c29d761a7a814c2d8063d6a86ababfd097a726c"),),
    sdist=True)


def iglu_example_csv(settings: Settings | None = None) -> Path:
    """The CSV's path: VITALSTREAM_IGLU_EXAMPLE_CSV if set, else the cached copy (downloaded on first use)."""
    given = os.environ.get("VITALSTREAM_IGLU_EXAMPLE_CSV")
    if given:
        return Path(given)
    settings = settings or Settings()
    fetch(settings, packages=(IGLU_EXAMPLE,))  # a no-op once cached
    return cache_dir(settings) / IGLU_EXAMPLE.files[0].path
