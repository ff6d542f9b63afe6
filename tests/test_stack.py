"""The local stack against real processes: Kafka and Prometheus up, idempotent restarts, nothing left behind.

Tests using a stack fixture get the `stack` marker from conftest. Lifecycle tests run a scratch stack (own
folder, own free ports, the session stack's install cache) so they never stop the session's services.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from typer.testing import CliRunner

from stack import manager
from stack.base import Service, StackError, TrackedProcess, mask_password, session_members
from stack.kafka import Kafka
from stack.lock import stack_lock
from stack.manager import Lease
from stack.prometheus import TEMPLATE, Prometheus, render_config
from stack.testing import StackProvider, TopicFactory
from vitalstream.cli import app
from vitalstream.config import Settings, get_settings

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def scratch(tmp_path: Path, stack: StackProvider) -> Iterator[Settings]:
    """Settings for a stack of its own: a temporary folder and free ports; installs shared with the session's."""
    shared = stack.settings.stack_dir.resolve()
    # Install into the shared cache under the session stack's lock, so parallel workers never race on it.
    with stack_lock(shared):
        Kafka(stack.settings).install()
    (shared / "cache").mkdir(parents=True, exist_ok=True)
    (tmp_path / "cache").symlink_to(shared / "cache")
    settings = Settings(stack_dir=tmp_path, kafka_port=_free_port(), zookeeper_port=_free_port(),
                        prometheus_port=_free_port())
    yield settings
    # Whatever a failing test left running is stopped; the check below then has nothing to find.
    manager.down(settings, ["kafka", "prometheus"])
    assert manager.stack_processes(settings) == []


# -- Kafka ---------------------------------------------------------------------------------------
def test_kafka_round_trip(kafka_bootstrap: str, topic_factory: TopicFactory) -> None:
    topic = topic_factory(partitions=3)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    producer.produce(topic, key=b"user-1", value=b'{"glucose_mg_dl": 104}', headers={"kind": b"glucose"})
    assert producer.flush(10) == 0

    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": f"{topic}-reader",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + 30
        message = None
        while message is None and time.monotonic() < deadline:
            polled = consumer.poll(1.0)
            if polled is not None and polled.error() is None:
                message = polled
    finally:
        consumer.close()
    assert message is not None, "nothing consumed within 30 s"
    assert (message.key(), message.value()) == (b"user-1", b'{"glucose_mg_dl": 104}')
    assert message.headers() == [("kind", b"glucose")]


def test_topic_factory_creates_the_partitions_asked_for(kafka_bootstrap: str, topic_factory: TopicFactory) -> None:
    topic = topic_factory(partitions=4, config={"cleanup.policy": "compact"})
    meta = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(topic, timeout=10).topics[topic]
    assert len(meta.partitions) == 4


def test_broker_does_not_auto_create_topics(kafka_bootstrap: str) -> None:
    # Topics are created explicitly with their partition count; an auto-created one would have 1 partition.
    name = f"never-created-{os.getpid()}-{time.monotonic_ns()}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "message.timeout.ms": 3000})
    producer.produce(name, b"x")
    producer.flush(5)
    assert name not in admin.list_topics(timeout=10).topics


# -- Prometheus ----------------------------------------------------------------------------------
def _active_targets(prometheus_url: str, timeout_s: float = 15.0) -> list[dict[str, Any]]:
    # Ready comes a moment before the scrape manager has loaded the targets.
    deadline = time.monotonic() + timeout_s
    while True:
        answer = httpx.get(f"{prometheus_url}/api/v1/targets", timeout=10).json()
        assert answer["status"] == "success", answer
        targets: list[dict[str, Any]] = answer["data"]["activeTargets"]
        if targets or time.monotonic() > deadline:
            return targets
        time.sleep(0.2)


def test_prometheus_targets_use_the_configured_ports(prometheus_url: str, stack: StackProvider) -> None:
    s = stack.settings
    urls = {t["labels"]["job"]: t["scrapeUrl"] for t in _active_targets(prometheus_url)}
    assert urls == {
        "prometheus": f"http://127.0.0.1:{s.prometheus_port}/metrics",
        "triton": f"http://127.0.0.1:{s.triton_metrics_port}/metrics",
        "api": f"http://127.0.0.1:{s.api_port}/metrics",
        "streams": f"http://127.0.0.1:{s.streams_metrics_port}/metrics",
        "inference-consumer": f"http://127.0.0.1:{s.inference_metrics_port}/metrics",
    }


def test_prometheus_loaded_the_rules_and_scrapes_itself(prometheus_url: str) -> None:
    config = yaml.safe_load(httpx.get(f"{prometheus_url}/api/v1/status/config", timeout=10).json()["data"]["yaml"])
    assert config["rule_files"] == [f"{REPO / 'monitoring' / 'rules'}/*.yml"]
    groups = httpx.get(f"{prometheus_url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    assert "vitalstream-availability" in {g["name"] for g in groups}

    deadline = time.monotonic() + 30  # the scrape interval is 5 s
    health = None
    while time.monotonic() < deadline:
        health = next(t["health"] for t in _active_targets(prometheus_url) if t["labels"]["job"] == "prometheus")
        if health == "up":
            break
        time.sleep(1)
    assert health == "up"


def test_rendered_config_passes_promtool(prometheus_url: str, tmp_path: Path) -> None:
    # prometheus_url: the session's Prometheus being up means promtool is installed.
    settings = Settings(stack_dir=tmp_path, prometheus_port=41234, api_port=41235)
    prometheus = Prometheus(settings)
    prometheus.run_dir.mkdir(parents=True)
    prometheus._write_config()  # runs `promtool check config`, raising StackError if it objects
    text = prometheus.config_file.read_text()
    assert "127.0.0.1:41234" in text and "127.0.0.1:41235" in text and "${" not in text


def test_template_placeholder_without_a_value_is_named(tmp_path: Path) -> None:
    values = Prometheus(Settings(stack_dir=tmp_path)).template_values()
    del values["api_port"]
    with pytest.raises(StackError, match=r"no value for \$\{api_port\}"):
        render_config(TEMPLATE.read_text(), values)


# -- lifecycle -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_up_twice_is_idempotent_and_down_leaves_nothing(scratch: Settings) -> None:
    first = manager.up(scratch, ["kafka", "prometheus"])
    assert [s.state for s in first.services] == ["running", "running"]
    pids = {s.name: s.pids for s in first.services}
    assert len(pids["kafka"]) == 2 and len(pids["prometheus"]) == 1  # ZooKeeper + broker; Prometheus
    admin = AdminClient({"bootstrap.servers": scratch.kafka})
    admin.create_topics([NewTopic("kept", 2, 1)])["kept"].result(30)
    del admin  # a client left connected would log every failed reconnect once the broker is down

    second = manager.up(scratch, ["kafka", "prometheus"])
    print(f"first up {first.total_s:.1f} s, second up {second.total_s:.1f} s")
    assert {s.name: s.pids for s in second.services} == pids
    assert {s.note for s in second.services} == {"already running"}
    assert second.total_s < 30  # the bound for `stack up` where it already ran

    state = json.loads((scratch.stack_dir / "stack.json").read_text())
    assert state["services"]["kafka"]["address"] == f"127.0.0.1:{scratch.kafka_port}"
    assert {"kafka", "prometheus"} <= set(state["first_run"])

    stopped = manager.down(scratch, ["kafka", "prometheus"])
    print(f"down {stopped.total_s:.1f} s")
    recorded = [TrackedProcess.load(f) for f in (scratch.stack_dir / "run").glob("*/*.pid")]
    assert recorded == []
    assert manager.stack_processes(scratch) == []
    left = {pid: Path(f"/proc/{pid}/stat").read_text() for pid in pids["kafka"] + pids["prometheus"]
            if Path(f"/proc/{pid}").exists()}
    assert left == {}

    # Broker data survives down/up; --wipe clears it.
    manager.up(scratch, ["kafka"])
    topics = AdminClient({"bootstrap.servers": scratch.kafka}).list_topics(timeout=10).topics
    assert len(topics["kept"].partitions) == 2
    manager.down(scratch, ["kafka"], wipe=True)
    assert not (scratch.stack_dir / "run" / "kafka").exists()


def test_down_reports_a_process_it_did_not_record(scratch: Settings) -> None:
    run_dir = scratch.stack_dir / "run" / "prometheus"
    run_dir.mkdir(parents=True)
    # Not started through the stack (no pid file), but naming its folder: down must not claim success.
    # (`; true` keeps bash from exec-ing sleep, which would drop the folder from the command line.)
    stray = subprocess.Popen(["bash", "-c", "sleep 300; true", str(run_dir / "stray")])
    try:
        # Until the child has exec'd bash, its command line is still this interpreter's (a race under load).
        cmdline = Path(f"/proc/{stray.pid}/cmdline")
        deadline = time.monotonic() + 10
        while str(run_dir).encode() not in cmdline.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(StackError, match=re.escape(f"pid {stray.pid}: bash -c sleep 300; true {run_dir}/stray")):
            manager.down(scratch, ["prometheus"])
    finally:
        stray.kill()
        stray.wait()
    assert manager.down(scratch, ["prometheus"])["prometheus"].state == "stopped"


def test_external_service_starts_nothing(scratch: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker.example.invalid:9092")
    result = manager.up(scratch, ["kafka"])["kafka"]
    assert (result.state, result.address, result.pids) == ("external", "broker.example.invalid:9092", [])
    assert not (scratch.stack_dir / "run" / "kafka").exists()
    assert manager.stack_processes(scratch) == []
    assert manager.down(scratch, ["kafka"])["kafka"].state == "external"


def test_what_a_session_started_is_stopped_even_if_the_variable_is_set_later(
        scratch: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    lease = Lease(scratch).acquire()
    lease.up(["prometheus"])
    monkeypatch.setenv("PROMETHEUS_URL", "http://prometheus.example.invalid:9090")
    assert manager.status(scratch, ["prometheus"])["prometheus"].state == "running"
    stopped = lease.release()
    assert stopped is not None and stopped["prometheus"].state == "stopped"
    assert manager.stack_processes(scratch) == []


def test_external_address_hides_the_password() -> None:
    assert mask_password("postgresql+psycopg://app:s3cret@db:5432/vs") == "postgresql+psycopg://app:***@db:5432/vs"
    assert mask_password("127.0.0.1:9092") == "127.0.0.1:9092"


def test_port_in_use_is_a_clear_error(scratch: Settings) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", scratch.prometheus_port))
        squatter.listen()
        with pytest.raises(StackError, match="prometheus_port, env VITALSTREAM_PROMETHEUS_PORT"):
            manager.up(scratch, ["prometheus"])
    assert manager.stack_processes(scratch) == []


def test_concurrent_up_calls_start_one_instance(scratch: Settings) -> None:
    env = {**os.environ, "VITALSTREAM_STACK_DIR": str(scratch.stack_dir),
           "VITALSTREAM_PROMETHEUS_PORT": str(scratch.prometheus_port), "COLUMNS": "200"}
    cli = [str(Path(sys.executable).parent / "vitalstream"), "stack", "up", "prometheus"]
    runs = [subprocess.Popen(cli, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for _ in range(2)]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert sum("already running" in out for out in outputs) == 1, outputs
    servers = [cmd for _, cmd in manager.stack_processes(scratch) if cmd.startswith("/usr/bin/prometheus")]
    assert len(servers) == 1


def test_last_test_session_out_stops_what_test_sessions_started(scratch: Settings) -> None:
    # Another session (a separate process, like a pytest-xdist worker) starts Prometheus under its lease.
    other = subprocess.Popen(
        [sys.executable, "-c", "import sys; from stack.manager import Lease; from vitalstream.config import Settings;"
         f"s = Settings(stack_dir={str(scratch.stack_dir)!r}, prometheus_port={scratch.prometheus_port});"
         "lease = Lease(s).acquire(); lease.up(['prometheus']); print('up', flush=True);"
         "sys.stdin.readline(); lease.release()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert other.stdout is not None and other.stdin is not None
    assert other.stdout.readline().strip() == "up"
    mine = Lease(scratch).acquire()
    assert mine.up(["prometheus"])["prometheus"].note == "already running"

    other.stdin.write("\n")
    other.stdin.flush()
    assert other.wait(60) == 0
    assert manager.status(scratch, ["prometheus"])["prometheus"].state == "running"  # this session still uses it

    stopped = mine.release()
    assert stopped is not None and stopped["prometheus"].state == "stopped"
    assert manager.stack_processes(scratch) == []


def test_services_started_from_the_command_line_outlive_test_sessions(scratch: Settings) -> None:
    manager.up(scratch, ["prometheus"])
    lease = Lease(scratch).acquire()
    lease.up(["prometheus"])
    assert lease.release() is None
    assert manager.status(scratch, ["prometheus"])["prometheus"].state == "running"


class _Sleepers(Service):
    """A real two-process service: a shell and the child it leaves in its session."""

    name = "sleepers"
    env_var = "VITALSTREAM_TEST_SLEEPERS_URL"

    def install(self) -> None:
        return None

    def start(self) -> None:
        self.spawn("shell", ["bash", "-c", "sleep 300 & wait"])

    def ready(self) -> bool:
        return True

    def address(self) -> str:
        return "nowhere"


def test_stop_also_stops_children_left_in_the_session(tmp_path: Path) -> None:
    service = _Sleepers(Settings(stack_dir=tmp_path))
    service.start()
    (shell,) = service.processes()
    deadline = time.monotonic() + 10
    children: list[TrackedProcess] = []
    while not children and time.monotonic() < deadline:
        children = session_members(shell.pid)
        time.sleep(0.05)
    assert children, "the shell's child did not appear"
    service.stop()
    assert not shell.alive() and not any(c.alive() for c in children)


# -- command line --------------------------------------------------------------------------------
@pytest.fixture
def cli_env(scratch: Settings) -> Iterator[dict[str, str]]:
    env = {"VITALSTREAM_STACK_DIR": str(scratch.stack_dir), "VITALSTREAM_PROMETHEUS_PORT": str(scratch.prometheus_port),
           "VITALSTREAM_KAFKA_PORT": str(scratch.kafka_port), "VITALSTREAM_ZOOKEEPER_PORT": str(scratch.zookeeper_port),
           "COLUMNS": "200"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    get_settings.cache_clear()


def test_cli_up_status_logs_down(cli_env: dict[str, str], scratch: Settings) -> None:
    runner = CliRunner()
    up = runner.invoke(app, ["stack", "up", "prometheus"])
    assert up.exit_code == 0, up.output
    assert f"http://127.0.0.1:{scratch.prometheus_port}" in up.output and "running" in up.output

    status = runner.invoke(app, ["stack", "status"])
    assert status.exit_code == 0, status.output
    prometheus_row = next(line for line in status.output.splitlines() if "prometheus" in line)
    assert "running" in prometheus_row and f"{scratch.prometheus_port}" in prometheus_row

    logs = runner.invoke(app, ["stack", "logs", "prometheus", "-n", "3"])
    assert logs.exit_code == 0, logs.output
    assert len(logs.output.splitlines()) == 3 and "level=" in logs.output

    down = runner.invoke(app, ["stack", "down", "prometheus"])
    assert down.exit_code == 0, down.output
    assert "stopped" in down.output
    assert manager.stack_processes(scratch) == []


def test_cli_library_errors_exit_1_with_the_message(cli_env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["stack", "up", "zookeeper"])
    assert result.exit_code == 1
    assert "unknown service 'zookeeper'; known: kafka, postgres, triton, prometheus" in result.output


# -- test options --------------------------------------------------------------------------------
def _docker_answers() -> bool:
    try:
        import docker

        return bool(docker.from_env().ping())
    except Exception:
        return False


@pytest.mark.skipif(_docker_answers(), reason="a Docker engine answers here, so --stack=docker is usable")
def test_stack_docker_without_docker_is_a_usage_error() -> None:
    done = subprocess.run([sys.executable, "-m", "pytest", "--stack=docker", "--collect-only", "-q",
                           "-p", "no:cacheprovider", "tests/test_stack.py"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert "--stack=docker needs" in done.stdout + done.stderr
