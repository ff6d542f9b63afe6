"""Errors of the model build; each message names the package, file or field at fault."""

from __future__ import annotations


class ModelBuildError(RuntimeError):
    """The models could not be fetched, converted or written."""


class FetchError(ModelBuildError):
    """A pinned package or file could not be downloaded, or its hash does not match the pin."""


class ConversionError(ModelBuildError):
    """A weights file is not the network a converter rebuilds; the message names what is missing."""
