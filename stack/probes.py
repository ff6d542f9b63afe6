"""Small probes of local processes, for tests and benchmarks: a free port, and a /metrics endpoint's samples."""

from __future__ import annotations

import socket
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sample_key(name: str, **labels: str) -> str:
    """How scrape_metrics keys a sample: 'name{label="value",...}', labels sorted."""
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def scrape_metrics(port: int, timeout_s: float = 5.0) -> dict[str, float]:
    """Every sample of http://127.0.0.1:<port>/metrics, keyed by sample_key; OSError when it does not answer."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout_s) as response:
        body = response.read().decode()
    return {sample_key(sample.name, **sample.labels): sample.value
            for family in text_string_to_metric_families(body) for sample in family.samples}
