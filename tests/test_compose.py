"""docker-compose.yml, its Prometheus and Grafana config and the Dockerfile, checked against the code.

There is no Docker engine here, so nothing is started: each check reads the files and returns the problems
it finds. The real files must give none, and a deliberately broken copy must give the expected one, so every
check is shown to be able to fail.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices
from sqlalchemy.engine import make_url

from vitalstream.config import Settings

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
PROMETHEUS_FILE = REPO / "monitoring" / "prometheus" / "prometheus.yml"
LOCAL_PROMETHEUS_FILE = REPO / "monitoring" / "prometheus" / "local.yml"
PROVISIONING_DIR = REPO / "monitoring" / "grafana" / "provisioning"
DATASOURCES_FILE = PROVISIONING_DIR / "datasources" / "datasources.yml"
DASHBOARD_PROVIDERS_FILE = PROVISIONING_DIR / "dashboards" / "dashboards.yml"

Doc = dict[str, Any]
Check = Callable[["Deployment"], list[str]]

# Third-party images, recognised by name; their ports are the images' documented defaults.
KAFKA_IMAGE = "apache/kafka:"
TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:"
PROMETHEUS_IMAGE = "prom/prometheus:"
GRAFANA_IMAGE = "grafana/grafana:"
TIMESCALEDB_IMAGE = "timescale/timescaledb:"
TRITON_DEFAULT_PORTS = {"--http-port": 8000, "--grpc-port": 8001, "--metrics-port": 8002}
PROMETHEUS_DEFAULT_PORT = 9090

DEPENDS_ON_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
#: The Python slim image has neither curl nor wget.
OUR_HEALTHCHECK_EXECUTABLE = "python"


# -- loading ----------------------------------------------------------------------------------------------
_COMPOSE_VAR = re.compile(r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}")


def interpolate(value: Any) -> Any:
    """Compose's `${VAR:-default}` expansion as on a machine where none of the variables is set."""
    if isinstance(value, str):
        def expand(match: re.Match[str]) -> str:
            op = match["op"] or ""
            if op in (":-", "-"):
                return match["arg"]
            if op in (":?", "?"):
                raise ValueError(f"compose variable ${{{match['name']}}} is required but has no default")
            return ""
        return _COMPOSE_VAR.sub(expand, value).replace("$$", "$")
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    return value


def load_yaml(path: Path) -> Doc:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict), f"{path}: top level is not a mapping"
    return doc


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    return instructions


def settings_env_names() -> frozenset[str]:
    """The environment names Settings reads: a field's alias, else env_prefix + the field name."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if alias is None:
            names.add(f"{prefix}{name}".upper())
        elif isinstance(alias, str):
            names.add(alias)
        elif isinstance(alias, AliasChoices):
            names.update(choice for choice in alias.choices if isinstance(choice, str))
        else:
            raise TypeError(f"Settings.{name}: alias {alias!r} is not a plain environment name")
    return frozenset(names)


@dataclass
class Deployment:
    """Everything the checks read, parsed once; tests break a deep copy of it."""

    compose: Doc
    prometheus: Doc
    local_prometheus: Doc
    datasources: Doc
    dashboard_providers: Doc
    dockerfile: list[tuple[str, str]]
    dockerignore: list[str]
    packages: list[str]
    settings_env: frozenset[str]


def load_deployment() -> Deployment:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    ignore = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()]
    return Deployment(
        compose=interpolate(load_yaml(COMPOSE_FILE)),
        prometheus=load_yaml(PROMETHEUS_FILE),
        local_prometheus=load_yaml(LOCAL_PROMETHEUS_FILE),
        datasources=load_yaml(DATASOURCES_FILE),
        dashboard_providers=load_yaml(DASHBOARD_PROVIDERS_FILE),
        dockerfile=dockerfile_instructions((REPO / "Dockerfile").read_text()),
        dockerignore=[line for line in ignore if line and not line.startswith("#")],
        packages=[p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]],
        settings_env=settings_env_names(),
    )


# -- reading a compose service ----------------------------------------------------------------------------
def services(d: Deployment) -> dict[str, Doc]:
    found: dict[str, Doc] = d.compose.get("services") or {}
    return found


def ours(d: Deployment) -> dict[str, Doc]:
    """Services built from our Dockerfile."""
    return {name: svc for name, svc in services(d).items() if "build" in svc}


def by_image(d: Deployment, prefix: str) -> list[tuple[str, Doc]]:
    return [(name, svc) for name, svc in services(d).items() if str(svc.get("image", "")).startswith(prefix)]


def environment(svc: Doc) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v).lower() if isinstance(v, bool) else str(v) for k, v in env.items()}


def args_of(svc: Doc, key: str = "command") -> list[str]:
    value = svc.get(key) or []
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def option(args: list[str], name: str) -> str | None:
    """Value of `--name=value` or `--name value`."""
    for i, arg in enumerate(args):
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
        if arg == name and i + 1 < len(args):
            return args[i + 1]
    return None


def one_shot(svc: Doc) -> bool:
    return str(svc.get("restart", "")) == "no"


def depends_on(svc: Doc) -> dict[str, str]:
    """target -> condition."""
    deps = svc.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {target: str((spec or {}).get("condition", "service_started")) for target, spec in deps.items()}


def healthcheck_test(svc: Doc) -> list[str]:
    hc = svc.get("healthcheck") or {}
    if hc.get("disable"):
        return []
    test = hc.get("test") or []
    return ["CMD-SHELL", test] if isinstance(test, str) else [str(t) for t in test]


def bind_mounts(svc: Doc) -> Iterator[tuple[Path, PurePosixPath]]:
    """(host path, container path) of each bind mount; host paths are relative to the compose file."""
    for volume in svc.get("volumes") or []:
        if isinstance(volume, str):
            parts = volume.split(":")
            if len(parts) < 2:
                continue
            source, target = parts[0], parts[1]
        else:
            source, target = str(volume.get("source", "")), str(volume.get("target", ""))
        if source.startswith((".", "/")):
            yield COMPOSE_FILE.parent / source, PurePosixPath(target)


def host_path(svc: Doc, container_path: str) -> Path | None:
    """Where a path inside the container comes from on the host, if a bind mount provides it."""
    inside = PurePosixPath(container_path)
    for source, target in bind_mounts(svc):
        if inside == target or target in inside.parents:
            return source / inside.relative_to(target)
    return None


def http_port(url: str) -> int | None:
    match = re.search(r"https?://[^/:\s'\"]+:(\d+)", url)
    return int(match[1]) if match else None


def served_port(name: str, svc: Doc) -> int | None:
    """The port a service serves /metrics (or its API) on, as compose declares it."""
    args = args_of(svc)
    if "build" in svc:
        declared = {int(v) for k, v in environment(svc).items() if k.endswith("_PORT")}
        if (port := option(args, "--port")) is not None:
            declared.add(int(port))
        if len(declared) > 1:
            raise ValueError(f"{name}: declares conflicting ports {sorted(declared)}")
        return declared.pop() if declared else None
    image = str(svc.get("image", ""))
    if image.startswith(TRITON_IMAGE):
        return int(option(args, "--metrics-port") or TRITON_DEFAULT_PORTS["--metrics-port"])
    if image.startswith(PROMETHEUS_IMAGE):
        listen = option(args, "--web.listen-address")
        return int(listen.rsplit(":", 1)[1]) if listen else PROMETHEUS_DEFAULT_PORT
    return None


# -- checks -----------------------------------------------------------------------------------------------
def check_compose_spec(d: Deployment) -> list[str]:
    problems = []
    if "version" in d.compose:
        problems.append("top-level `version:` is obsolete in the Compose spec; remove it")
    for name, svc in services(d).items():
        if "image" not in svc and "build" not in svc:
            problems.append(f"{name}: neither `image` nor `build`")
    return problems


def check_healthchecks(d: Deployment) -> list[str]:
    problems = []
    for name, svc in services(d).items():
        if one_shot(svc):
            continue
        if "restart" not in svc:
            problems.append(f"{name}: long-running but no restart policy (say `restart: \"no\"` if one-shot)")
        test = healthcheck_test(svc)
        if not test or test[0] == "NONE":
            problems.append(f"{name}: long-running service without a healthcheck")
        elif "build" in svc:
            command = test[1:] if test[0] == "CMD" else shlex.split(" ".join(test[1:]))
            executable = command[0] if command else ""
            if executable != OUR_HEALTHCHECK_EXECUTABLE:
                problems.append(f"{name}: healthcheck runs {executable!r}; our slim image only has python")
    return problems


def check_depends_on(d: Deployment) -> list[str]:
    problems = []
    all_services = services(d)
    migrations = [n for n, s in ours(d).items() if one_shot(s) and not s.get("profiles")]
    for name, svc in all_services.items():
        deps = depends_on(svc)
        for target, condition in deps.items():
            if target not in all_services:
                problems.append(f"{name}: depends on {target!r}, which is not a service")
                continue
            dep = all_services[target]
            if condition not in DEPENDS_ON_CONDITIONS:
                problems.append(f"{name}: unknown depends_on condition {condition!r} for {target}")
            if condition == "service_healthy" and not healthcheck_test(dep):
                problems.append(f"{name}: waits for {target} to be healthy, but {target} has no healthcheck")
            if condition == "service_completed_successfully" and not one_shot(dep):
                problems.append(f"{name}: waits for {target} to complete, but {target} is long-running")
            if dep.get("profiles") and not set(dep["profiles"]) <= set(svc.get("profiles") or []):
                problems.append(f"{name}: depends on {target}, which only exists in profiles {dep['profiles']}")
        if "build" in svc and name not in migrations:
            for migration in migrations:
                if deps.get(migration) != "service_completed_successfully":
                    problems.append(f"{name}: must wait for {migration} (condition service_completed_successfully)")
    return problems


def check_settings_env(d: Deployment) -> list[str]:
    return [
        f"{name}: environment {key} is not read by vitalstream.config.Settings"
        for name, svc in ours(d).items() for key in environment(svc) if key not in d.settings_env
    ]


def check_connections(d: Deployment) -> list[str]:
    """The addresses our services are given point at the compose services that provide them."""
    problems = []
    kafka = dict(by_image(d, KAFKA_IMAGE))
    triton = dict(by_image(d, TRITON_IMAGE))
    prometheus = dict(by_image(d, PROMETHEUS_IMAGE))
    all_services = services(d)
    for name, svc in ours(d).items():
        env = environment(svc)
        for server in filter(None, env.get("KAFKA_BOOTSTRAP_SERVERS", "").split(",")):
            advertised = {
                listener.split("://", 1)[1]
                for kafka_svc in kafka.values()
                for listener in environment(kafka_svc).get("KAFKA_ADVERTISED_LISTENERS", "").split(",")
            }
            if server not in advertised:
                problems.append(f"{name}: KAFKA_BOOTSTRAP_SERVERS {server} is not an advertised Kafka listener")
        if "DATABASE_URL" in env:
            url = make_url(env["DATABASE_URL"])
            db = all_services.get(url.host or "")
            if db is None or not str(db.get("image", "")).startswith(TIMESCALEDB_IMAGE):
                problems.append(f"{name}: DATABASE_URL host {url.host!r} is not the TimescaleDB service")
            else:
                db_env = environment(db)
                if url.database != db_env.get("POSTGRES_DB", "postgres"):
                    problems.append(f"{name}: DATABASE_URL database {url.database!r} is not POSTGRES_DB")
                if url.password != db_env.get("POSTGRES_PASSWORD"):
                    problems.append(f"{name}: DATABASE_URL password differs from POSTGRES_PASSWORD")
            if url.drivername != "postgresql+psycopg":
                problems.append(f"{name}: DATABASE_URL driver {url.drivername!r}; the code uses psycopg 3")
        if "TRITON_URL" in env:
            host, _, port = env["TRITON_URL"].rpartition(":")
            protocol = env.get("TRITON_PROTOCOL", "grpc")
            if host not in triton:
                problems.append(f"{name}: TRITON_URL host {host!r} is not the Triton service")
            else:
                flag = f"--{protocol}-port"
                expected = int(option(args_of(triton[host]), flag) or TRITON_DEFAULT_PORTS[flag])
                if int(port) != expected:
                    problems.append(f"{name}: TRITON_URL port {port} is not Triton's {protocol} port {expected}")
        if "PROMETHEUS_URL" in env:
            host = re.sub(r"^https?://|[:/].*$", "", env["PROMETHEUS_URL"])
            if host not in prometheus or http_port(env["PROMETHEUS_URL"]) != served_port(host, prometheus[host]):
                problems.append(f"{name}: PROMETHEUS_URL {env['PROMETHEUS_URL']} is not the Prometheus service")
    return problems


def scrape_targets(prometheus: Doc) -> dict[str, list[str]]:
    """job name -> its static targets."""
    return {
        job["job_name"]: [t for sc in job.get("static_configs") or [] for t in sc.get("targets") or []]
        for job in prometheus.get("scrape_configs") or []
    }


def check_scrape_targets(d: Deployment) -> list[str]:
    problems = []
    all_services = services(d)
    scraped: set[str] = set()
    for job, targets in scrape_targets(d.prometheus).items():
        for target in targets:
            host, _, port = target.rpartition(":")
            if host not in all_services:
                problems.append(f"job {job}: target {target} is not a compose service")
                continue
            scraped.add(host)
            try:
                expected = served_port(host, all_services[host])
            except ValueError as conflict:
                problems.append(str(conflict))
                continue
            if expected is None or int(port) != expected:
                problems.append(f"job {job}: target {target}, but {host} serves on port {expected}")
    for name, svc in all_services.items():
        try:
            serves = served_port(name, svc)
        except ValueError as conflict:
            if name not in scraped:  # a scraped one was reported above
                problems.append(str(conflict))
            continue
        if serves is not None and not one_shot(svc) and name not in scraped:
            problems.append(f"{name}: serves metrics on {serves} but Prometheus does not scrape it")
        if "build" in svc and not one_shot(svc):
            probed = http_port(" ".join(healthcheck_test(svc)))
            if probed != serves:
                problems.append(f"{name}: healthcheck probes port {probed}, the service serves {serves}")
    return problems


def check_job_names(d: Deployment) -> list[str]:
    """Rules and dashboards select by job, so both Prometheus configs must use the same job names."""
    compose_jobs, local_jobs = set(scrape_targets(d.prometheus)), set(scrape_targets(d.local_prometheus))
    if compose_jobs == local_jobs:
        return []
    return [f"scrape jobs differ from local.yml: only in compose {sorted(compose_jobs - local_jobs)}, "
            f"only in local {sorted(local_jobs - compose_jobs)}"]


def check_rules_mounted(d: Deployment) -> list[str]:
    problems = []
    for name, svc in by_image(d, PROMETHEUS_IMAGE):
        config = host_path(svc, "/etc/prometheus/prometheus.yml")
        if config is None or config.resolve() != PROMETHEUS_FILE.resolve():
            problems.append(f"{name}: does not mount {PROMETHEUS_FILE.relative_to(REPO)} as its config")
        for pattern in d.prometheus.get("rule_files") or []:
            folder = host_path(svc, str(PurePosixPath(pattern).parent))
            if folder is None or not folder.is_dir():
                problems.append(f"{name}: rule_files {pattern} is not in a mounted folder")
            elif not list(folder.glob(PurePosixPath(pattern).name)):
                problems.append(f"{name}: rule_files {pattern} matches no file in {folder}")
    return problems


def check_kafka_kraft(d: Deployment) -> list[str]:
    problems = []
    kafka = by_image(d, KAFKA_IMAGE)
    if len(kafka) != 1:
        problems.append(f"expected one {KAFKA_IMAGE}* service, found {len(kafka)}")
    for name, svc in services(d).items():
        if "zookeeper" in name.lower() or "zookeeper" in str(svc.get("image", "")).lower():
            problems.append(f"{name}: ZooKeeper has no place in a KRaft deployment")
    for name, svc in kafka:
        env = environment(svc)
        roles = set(env.get("KAFKA_PROCESS_ROLES", "").split(","))
        if roles != {"broker", "controller"}:
            problems.append(f"{name}: KAFKA_PROCESS_ROLES must be broker,controller (single KRaft node)")
        for key in ("KAFKA_NODE_ID", "KAFKA_CONTROLLER_QUORUM_VOTERS", "KAFKA_CONTROLLER_LISTENER_NAMES",
                    "CLUSTER_ID"):
            if not env.get(key):
                problems.append(f"{name}: {key} is not set")
        if "KAFKA_ZOOKEEPER_CONNECT" in env:
            problems.append(f"{name}: KAFKA_ZOOKEEPER_CONNECT set on a KRaft node")
        if env.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE") != "false":
            problems.append(f"{name}: KAFKA_AUTO_CREATE_TOPICS_ENABLE must be false (topics are created by us)")
        for key in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"):
            if key not in env:
                problems.append(f"{name}: {key} is not set (the default of 3 cannot be met by one broker)")
        for key, value in env.items():
            if key.endswith(("_REPLICATION_FACTOR", "_MIN_ISR", "MIN_INSYNC_REPLICAS")) and value != "1":
                problems.append(f"{name}: {key}={value}; a single broker can only hold 1")
        log_dir = env.get("KAFKA_LOG_DIRS", "")
        volumes = [str(v).split(":") for v in svc.get("volumes") or []]
        if not any(len(v) > 1 and v[1] == log_dir and not v[0].startswith((".", "/")) for v in volumes):
            problems.append(f"{name}: KAFKA_LOG_DIRS {log_dir!r} is not on a named volume")
    return problems


def check_triton_gpu(d: Deployment) -> list[str]:
    triton = by_image(d, TRITON_IMAGE)
    if not triton:
        return [f"no {TRITON_IMAGE}* service"]
    problems = []
    for name, svc in triton:
        devices = (((svc.get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get("devices")
        gpus = [
            dev for dev in devices or []
            if dev.get("driver") == "nvidia" and "gpu" in (dev.get("capabilities") or [])
            and (dev.get("count") == "all" or int(dev.get("count", 0)) >= 1 or dev.get("device_ids"))
        ]
        if not gpus:
            problems.append(f"{name}: no GPU reservation (deploy.resources.reservations.devices, nvidia, gpu)")
        repo_arg = option(args_of(svc), "--model-repository")
        if repo_arg is None or host_path(svc, repo_arg) is None:
            problems.append(f"{name}: --model-repository {repo_arg!r} is not a bind-mounted folder")
    return problems


_GRAFANA_ENV = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def check_grafana(d: Deployment) -> list[str]:
    grafana = by_image(d, GRAFANA_IMAGE)
    if len(grafana) != 1:
        return [f"expected one {GRAFANA_IMAGE}* service, found {len(grafana)}"]
    name, svc = grafana[0]
    problems = []
    provisioning = host_path(svc, "/etc/grafana/provisioning")
    if provisioning is None or provisioning.resolve() != PROVISIONING_DIR.resolve():
        problems.append(f"{name}: does not mount {PROVISIONING_DIR.relative_to(REPO)} at /etc/grafana/provisioning")
    for provider in d.dashboard_providers.get("providers") or []:
        path = str((provider.get("options") or {}).get("path", ""))
        folder = host_path(svc, path)
        if folder is None or not folder.is_dir():
            problems.append(f"dashboard provider {provider.get('name')}: {path!r} is not a mounted folder")
    sources = {ds.get("uid"): ds for ds in d.datasources.get("datasources") or []}
    for uid in ("prometheus", "timescaledb"):
        if uid not in sources:
            problems.append(f"no Grafana data source with uid {uid!r}")
    all_services = services(d)
    for uid, ds in sources.items():
        host = re.sub(r"^\w+://|:.*$", "", str(ds.get("url", "")))
        if host not in all_services:
            problems.append(f"data source {uid}: url host {host!r} is not a compose service")
    timescale = sources.get("timescaledb") or {}
    json_data = timescale.get("jsonData") or {}
    if json_data.get("timescaledb") is not True:
        problems.append("data source timescaledb: jsonData.timescaledb must be true")
    db_host = re.sub(r":.*$", "", str(timescale.get("url", "")))
    if db_host in all_services and json_data.get("database") != environment(all_services[db_host]).get("POSTGRES_DB"):
        problems.append("data source timescaledb: jsonData.database is not the service's POSTGRES_DB")
    grafana_env = environment(svc)
    for text in _strings(d.datasources):
        for var in _GRAFANA_ENV.findall(text):
            if var not in grafana_env:
                problems.append(f"datasources.yml uses ${var}, which the {name} service does not set")
    return problems


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; a path is excluded with any of its parents."""
    parts = PurePosixPath(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.lstrip("!").strip("/")
        if any(fnmatch.fnmatch(prefix, body) for prefix in prefixes):
            ignored = not negate
    return ignored


def check_dockerfile(d: Deployment) -> list[str]:
    problems = []
    copied: set[str] = set()
    for keyword, args in d.dockerfile:
        if keyword == "COPY" and "--from=" not in args:
            sources = [a for a in shlex.split(args) if not a.startswith("--")][:-1]
            copied.update(s.rstrip("/") for s in sources)
    for package in d.packages:
        if package not in copied:
            problems.append(f"Dockerfile does not COPY package {package!r} (pyproject packages.find include)")
    for source in sorted(copied):
        if not (REPO / source).exists():
            problems.append(f"Dockerfile copies {source!r}, which does not exist")
        if _ignored(source, d.dockerignore):
            problems.append(f".dockerignore excludes {source!r}, which the Dockerfile copies")
    for must_ignore in (".venv", ".stack", "tests"):
        if not _ignored(must_ignore, d.dockerignore):
            problems.append(f".dockerignore does not exclude {must_ignore}")
    last_stage = d.dockerfile[max(i for i, (k, _) in enumerate(d.dockerfile) if k == "FROM"):]
    users = [args for keyword, args in last_stage if keyword == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("Dockerfile: the final image runs as root")
    entrypoints = [json.loads(args) for keyword, args in last_stage if keyword == "ENTRYPOINT"]
    if entrypoints[-1:] != [["vitalstream"]]:
        problems.append(f"Dockerfile: ENTRYPOINT is {entrypoints[-1:]}, not ['vitalstream']")
    exposed = {int(p.split("/")[0]) for keyword, args in last_stage if keyword == "EXPOSE" for p in args.split()}
    for name, svc in ours(d).items():
        port = option(args_of(svc), "--port")
        if port is not None and int(port) not in exposed:
            problems.append(f"{name}: serves on {port}, which the Dockerfile does not EXPOSE")
    return problems


#: Our commands that write or read meal photos (API uploads, the simulator's photos, the inference consumer).
PHOTO_COMMANDS = (["api"], ["simulate"], ["worker", "inference"])


def named_volumes(svc: Doc) -> dict[PurePosixPath, str]:
    """Container path -> named volume, for each named-volume mount (bind mounts left out)."""
    mounts: dict[PurePosixPath, str] = {}
    for volume in svc.get("volumes") or []:
        source, target = (volume.split(":")[:2] if isinstance(volume, str)
                          else (str(volume.get("source", "")), str(volume.get("target", ""))))
        if source and not source.startswith((".", "/")):
            mounts[PurePosixPath(target)] = source
    return mounts


def check_object_store(d: Deployment) -> list[str]:
    """Every process that stores or loads meal photos sees the same store: one named volume at the store's folder
    (or an S3 bucket), created in the image so the unprivileged user can write it."""
    problems = []
    volumes_used: dict[str, str] = {}
    for name, svc in ours(d).items():
        if not any(args_of(svc)[:len(command)] == command for command in PHOTO_COMMANDS):
            continue
        env = environment(svc)
        if env.get("VITALSTREAM_OBJECT_STORE_URL"):
            continue
        folder = env.get("VITALSTREAM_OBJECT_STORE_DIR")
        if not folder:
            problems.append(f"{name}: handles meal photos but sets neither VITALSTREAM_OBJECT_STORE_DIR nor "
                            "VITALSTREAM_OBJECT_STORE_URL (each container would keep photos of its own)")
            continue
        volume = named_volumes(svc).get(PurePosixPath(folder))
        if volume is None:
            problems.append(f"{name}: does not mount a named volume at {folder}, the object store's folder")
            continue
        volumes_used[name] = volume
        if volume not in (d.compose.get("volumes") or {}):
            problems.append(f"{name}: volume {volume!r} is not declared under volumes:")
        if not any(keyword == "RUN" and folder in args for keyword, args in d.dockerfile):
            problems.append(f"Dockerfile: does not create {folder} (a new volume would be root-owned)")
    if len(set(volumes_used.values())) > 1:
        problems.append(f"photo services mount different object stores: {volumes_used}")
    return problems


CHECKS: list[Check] = [
    check_compose_spec, check_healthchecks, check_depends_on, check_settings_env, check_connections,
    check_scrape_targets, check_job_names, check_rules_mounted, check_kafka_kraft, check_triton_gpu,
    check_grafana, check_dockerfile, check_object_store,
]


# -- breaking a copy --------------------------------------------------------------------------------------
def _svc(d: Deployment, name: str) -> Doc:
    return services(d)[name]


def _job(d: Deployment, name: str) -> Doc:
    job: Doc = next(j for j in d.prometheus["scrape_configs"] if j["job_name"] == name)
    return job


def _datasource(d: Deployment, uid: str) -> Doc:
    ds: Doc = next(s for s in d.datasources["datasources"] if s["uid"] == uid)
    return ds


Mutation = Callable[[Deployment], object]

MUTATIONS: list[tuple[str, Mutation, Check, str]] = [
    ("version key", lambda d: d.compose.update(version="3.8"), check_compose_spec, "version"),
    ("no image", lambda d: _svc(d, "kafka").pop("image"), check_compose_spec, "kafka: neither"),
    ("no healthcheck", lambda d: _svc(d, "streams").pop("healthcheck"), check_healthchecks, "streams"),
    ("no restart", lambda d: _svc(d, "prometheus").pop("restart"), check_healthchecks, "restart policy"),
    ("curl in slim image",
     lambda d: _svc(d, "api")["healthcheck"].update(test=["CMD", "curl", "-f", "http://127.0.0.1:8000/healthz"]),
     check_healthchecks, "only has python"),
    ("unknown dependency", lambda d: _svc(d, "api")["depends_on"].update(ghost={"condition": "service_started"}),
     check_depends_on, "ghost"),
    ("healthy one-shot", lambda d: _svc(d, "api")["depends_on"].update(migrate={"condition": "service_healthy"}),
     check_depends_on, "no healthcheck"),
    ("skips migrate", lambda d: _svc(d, "streams")["depends_on"].pop("migrate"), check_depends_on, "migrate"),
    ("needs demo profile", lambda d: _svc(d, "api")["depends_on"].update(simulator={}), check_depends_on,
     "profiles"),
    ("unknown setting", lambda d: _svc(d, "api")["environment"].update(VITALSTREAM_NOT_A_SETTING="1"),
     check_settings_env, "VITALSTREAM_NOT_A_SETTING"),
    ("setting renamed in code", lambda d: setattr(d, "settings_env", d.settings_env - {"DATABASE_URL"}),
     check_settings_env, "DATABASE_URL"),
    ("kafka port", lambda d: _svc(d, "streams")["environment"].update(KAFKA_BOOTSTRAP_SERVERS="kafka:29092"),
     check_connections, "KAFKA_BOOTSTRAP_SERVERS"),
    ("database host",
     lambda d: _svc(d, "api")["environment"].update(DATABASE_URL="postgresql+psycopg://postgres:x@db:5432/v"),
     check_connections, "'db'"),
    ("database password", lambda d: _svc(d, "timescaledb")["environment"].update(POSTGRES_PASSWORD="other"),
     check_connections, "password"),
    ("triton http port under grpc", lambda d: _svc(d, "inference")["environment"].update(TRITON_URL="triton:8000"),
     check_connections, "TRITON_URL"),
    ("worker port moved", lambda d: _svc(d, "streams")["environment"].update(VITALSTREAM_STREAMS_METRICS_PORT="9999"),
     check_scrape_targets, "streams"),
    ("job dropped", lambda d: d.prometheus["scrape_configs"].remove(_job(d, "inference-consumer")),
     check_scrape_targets, "inference: serves metrics"),
    ("triton port", lambda d: _job(d, "triton").update(static_configs=[{"targets": ["triton:8003"]}]),
     check_scrape_targets, "triton:8003"),
    ("target not a service", lambda d: _job(d, "api").update(static_configs=[{"targets": ["web:8000"]}]),
     check_scrape_targets, "web:8000"),
    ("job renamed", lambda d: _job(d, "api").update(job_name="vitalstream-api"), check_job_names, "vitalstream-api"),
    ("rules elsewhere", lambda d: d.prometheus.update(rule_files=["/etc/prometheus/alerts/*.yml"]),
     check_rules_mounted, "not in a mounted folder"),
    ("no process roles", lambda d: _svc(d, "kafka")["environment"].pop("KAFKA_PROCESS_ROLES"), check_kafka_kraft,
     "KAFKA_PROCESS_ROLES"),
    ("zookeeper", lambda d: services(d).update(zookeeper={"image": "zookeeper:3.9"}), check_kafka_kraft,
     "ZooKeeper"),
    ("auto-create", lambda d: _svc(d, "kafka")["environment"].update(KAFKA_AUTO_CREATE_TOPICS_ENABLE="true"),
     check_kafka_kraft, "AUTO_CREATE"),
    ("replication 3",
     lambda d: _svc(d, "kafka")["environment"].update(KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR=3),
     check_kafka_kraft, "OFFSETS_TOPIC_REPLICATION_FACTOR=3"),
    ("no gpu", lambda d: _svc(d, "triton").pop("deploy"), check_triton_gpu, "GPU"),
    ("dashboards path", lambda d: d.dashboard_providers["providers"][0]["options"].update(path="/var/dashboards"),
     check_grafana, "/var/dashboards"),
    ("not timescaledb", lambda d: _datasource(d, "timescaledb")["jsonData"].update(timescaledb=False),
     check_grafana, "jsonData.timescaledb"),
    ("uid renamed", lambda d: _datasource(d, "prometheus").update(uid="prom"), check_grafana, "'prometheus'"),
    ("password not passed", lambda d: _svc(d, "grafana")["environment"].pop("POSTGRES_PASSWORD"), check_grafana,
     "POSTGRES_PASSWORD"),
    ("package not copied", lambda d: d.dockerfile.remove(("COPY", "storage ./storage")), check_dockerfile,
     "'storage'"),
    ("package ignored", lambda d: d.dockerignore.append("api"), check_dockerfile, "excludes 'api'"),
    ("runs as root", lambda d: d.dockerfile.append(("USER", "root")), check_dockerfile, "root"),
    ("stack in context", lambda d: d.dockerignore.remove(".stack"), check_dockerfile, ".stack"),
    ("photos not shared", lambda d: _svc(d, "inference").pop("volumes"), check_object_store,
     "inference: does not mount"),
    ("other store", lambda d: _svc(d, "api").update(volumes=["photos:/var/lib/vitalstream/objects"]),
     check_object_store, "different object stores"),
]


@pytest.fixture(scope="module")
def deployment() -> Deployment:
    return load_deployment()


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_real_files_pass(deployment: Deployment, check: Check) -> None:
    assert check(deployment) == []


@pytest.mark.parametrize(("mutate", "check", "expected"), [m[1:] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS])
def test_check_catches(deployment: Deployment, mutate: Mutation, check: Check, expected: str) -> None:
    broken = copy.deepcopy(deployment)
    mutate(broken)
    problems = check(broken)
    assert any(expected in p for p in problems), problems


def test_every_check_is_shown_to_fail() -> None:
    shown = {m[2] for m in MUTATIONS}
    assert [c.__name__ for c in CHECKS if c not in shown] == []


def test_settings_names_come_from_the_model() -> None:
    names = settings_env_names()
    # Aliased fields keep their 12-factor name; the rest take the prefix.
    assert {"KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "VITALSTREAM_LOG_LEVEL"} <= names
    assert "VITALSTREAM_DATABASE_URL" not in names and "LOG_LEVEL" not in names


def test_interpolation_uses_defaults() -> None:
    assert interpolate("a${X:-b}c${Y-d}${Z}$$e") == "abcd$e"
    with pytest.raises(ValueError, match="REQUIRED"):
        interpolate("${REQUIRED:?set it}")


# -- promtool ---------------------------------------------------------------------------------------------
def _promtool() -> str:
    found = shutil.which("promtool") or ("/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None)
    if found is None:
        pytest.skip("promtool not installed: Debian's `prometheus` package provides /usr/bin/promtool "
                    "(the local stack installs it: `vitalstream stack up prometheus`)")
    return found


def _promtool_check(config: Doc, deployment: Deployment, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`promtool check config` on the compose config, with container paths mapped to their host folders."""
    _, prometheus = by_image(deployment, PROMETHEUS_IMAGE)[0]
    local = copy.deepcopy(config)
    rule_files = []
    for pattern in local.get("rule_files") or []:
        folder = host_path(prometheus, str(PurePosixPath(pattern).parent))
        assert folder is not None, f"rule_files {pattern} is not in a folder mounted into {PROMETHEUS_IMAGE}*"
        rule_files.append(str(folder / PurePosixPath(pattern).name))
    local["rule_files"] = rule_files
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(local))
    return subprocess.run([_promtool(), "check", "config", str(path)], capture_output=True, text=True,
                          timeout=60, check=False)


def test_promtool_accepts_compose_config(deployment: Deployment, tmp_path: Path) -> None:
    result = _promtool_check(deployment.prometheus, deployment, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    # The rule files were found and checked too, not just the config's syntax.
    assert "rules found" in result.stdout + result.stderr


def test_promtool_rejects_broken_config(deployment: Deployment, tmp_path: Path) -> None:
    broken = copy.deepcopy(deployment.prometheus)
    broken["global"]["scrape_interval"] = "every now and then"
    result = _promtool_check(broken, deployment, tmp_path)
    assert result.returncode != 0
