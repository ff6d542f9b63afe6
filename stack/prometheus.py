"""Prometheus 2.42 from Debian's `prometheus` package, run as our own process on 127.0.0.1.

The package only provides the binary: its own daemon (which the package scripts would start through
invoke-rc.d) is kept from starting by stack.apt, and we start /usr/bin/prometheus with a config rendered from
monitoring/prometheus/local.yml, storage under the run folder and the lifecycle API on (for reloads).
"""

from __future__ import annotations

import logging
import os
import pwd
import signal
import subprocess
import urllib.request
from pathlib import Path
from string import Template

from stack.apt import apt_install
from stack.base import Service, StackError, TrackedProcess, terminate

log = logging.getLogger(__name__)

PROMETHEUS = Path("/usr/bin/prometheus")
PROMTOOL = Path("/usr/bin/promtool")

_REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = _REPO_ROOT / "monitoring" / "prometheus" / "local.yml"
RULES_DIR = _REPO_ROOT / "monitoring" / "rules"


def render_config(template: str, values: dict[str, object]) -> str:
    """Fill `${name}` placeholders; a placeholder without a value is an error naming it."""
    try:
        return Template(template).substitute({k: str(v) for k, v in values.items()})
    except KeyError as missing:
        raise StackError(f"prometheus config template {TEMPLATE}: no value for ${{{missing.args[0]}}}") from None


class Prometheus(Service):
    """Scrapes the local stack and our own services; started last."""

    name = "prometheus"
    env_var = "PROMETHEUS_URL"
    startup_timeout_s = 60.0

    @property
    def config_file(self) -> Path:
        return self.run_dir / "prometheus.yml"

    @property
    def data_dir(self) -> Path:
        return self.run_dir / "data"

    def ports(self) -> dict[str, int]:
        return {"prometheus_port": self.settings.prometheus_port}

    def address(self) -> str:
        return f"http://127.0.0.1:{self.settings.prometheus_port}"

    def template_values(self) -> dict[str, object]:
        s = self.settings
        return {
            "prometheus_port": s.prometheus_port,
            "triton_metrics_port": s.triton_metrics_port,
            "api_port": s.api_port,
            "streams_metrics_port": s.streams_metrics_port,
            "inference_metrics_port": s.inference_metrics_port,
            "rules_dir": RULES_DIR,
        }

    def rendered_config(self) -> str:
        return render_config(TEMPLATE.read_text(), self.template_values())

    # -- Service -----------------------------------------------------------------------------
    def install(self) -> None:
        if PROMETHEUS.exists():
            return
        if os.geteuid() != 0:
            raise StackError(
                "prometheus: /usr/bin/prometheus is missing and installing it needs root. Install Debian's "
                "package once, then run again:\n    sudo apt-get install -y --no-install-recommends prometheus\n"
                "(the local stack runs that binary itself; the package's own service is not used)")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        apt_install(["prometheus"], log=self.run_dir / "apt.log")
        _stop_package_daemon()
        if not PROMETHEUS.exists():
            raise StackError("prometheus: apt-get installed the package but /usr/bin/prometheus is missing")

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        self.spawn("prometheus", [
            str(PROMETHEUS),
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address=127.0.0.1:{self.settings.prometheus_port}",
            "--web.enable-lifecycle",
        ], cwd=self.run_dir)

    def ready(self) -> bool:
        try:
            return _request("GET", f"{self.address()}/-/ready") == 200
        except OSError:
            return False

    def refresh(self) -> None:
        """Re-render the config; if it changed (ports, rules folder), ask the running server to reload it."""
        if self.config_file.exists() and self.config_file.read_text() == self.rendered_config():
            return
        self._write_config()
        try:
            _request("POST", f"{self.address()}/-/reload", timeout_s=10.0)
        except OSError as err:
            raise StackError(f"prometheus: reload of {self.config_file} failed: {err}") from err
        log.info("prometheus config changed; reloaded", extra={"config": str(self.config_file)})

    def _write_config(self) -> None:
        self.config_file.write_text(self.rendered_config())
        check = subprocess.run([str(PROMTOOL), "check", "config", str(self.config_file)],
                               capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise StackError(f"prometheus: {self.config_file} (rendered from {TEMPLATE}) is invalid:\n"
                             f"{(check.stdout + check.stderr).strip()}")


def _request(method: str, url: str, timeout_s: float = 2.0) -> int:
    # urllib rather than httpx: readiness is polled ten times a second, and httpx logs every request at INFO.
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=timeout_s) as response:
        status: int = response.status
        return status


def _stop_package_daemon() -> None:
    """Stop a daemon the package's scripts started anyway (an init system that ignores policy-rc.d).

    The package's daemon runs as the `prometheus` user; ours run as whoever ran `stack up`.
    """
    try:
        uid = pwd.getpwnam("prometheus").pw_uid
    except KeyError:
        return
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid and Path(os.readlink(entry / "exe")) == PROMETHEUS:
                log.warning("stopping the prometheus daemon the package started", extra={"pid": int(entry.name)})
                terminate(TrackedProcess.of(int(entry.name)), 10.0, signal.SIGTERM)
        except OSError:
            continue
