"""Probes: /healthz (the process answers) and /readyz (it can reach Kafka and the database)."""

from __future__ import annotations

from typing import Annotated, Literal

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import EngineDep
from api.errors import ApiError, ErrorResponse, FieldProblem
from schemas.topics import MEALS, READINGS

router = APIRouter(tags=["health"])

#: How long readiness waits for each dependency; a probe must answer before the orchestrator's timeout.
PROBE_TIMEOUT_S = 3.0


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    checks: dict[str, str]


def _admin(request: Request) -> AdminClient:
    admin: AdminClient = request.app.state.kafka_admin
    return admin


@router.get("/healthz", summary="Liveness: the process is serving")
def healthz() -> Health:
    return Health()


@router.get("/readyz", summary="Readiness: the database and Kafka (with the topics ingest writes to) answer",
            responses={503: {"model": ErrorResponse, "description": "A dependency is unreachable"}})
def readyz(engine: EngineDep, admin: Annotated[AdminClient, Depends(_admin)]) -> Readiness:
    failed: list[FieldProblem] = []
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        failed.append(FieldProblem(field="database", rule="reachable", message=str(error).splitlines()[0]))
    try:
        topics = admin.list_topics(timeout=PROBE_TIMEOUT_S).topics
        missing = [t.name for t in (READINGS, MEALS) if t.name not in topics]
        if missing:
            failed.append(FieldProblem(field="kafka", rule="topics_exist",
                                       message=f"missing topics {missing}; run `vitalstream topics create`"))
    except KafkaException as error:
        failed.append(FieldProblem(field="kafka", rule="reachable", message=str(error)))
    if failed:
        raise ApiError(503, "not_ready", "not ready: " + "; ".join(f"{p.field}: {p.message}" for p in failed),
                       failed)
    return Readiness(checks={"database": "ok", "kafka": "ok"})
