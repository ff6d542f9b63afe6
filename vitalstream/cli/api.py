"""`vitalstream api`: serve the HTTP API, print its OpenAPI document, change a user's role."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy.exc import OperationalError

from storage.accounts import Role, set_role
from vitalstream.config import get_settings

# The app, uvicorn and the Kafka client are imported inside the commands that need them: every `vitalstream`
# invocation imports this module, and most never serve HTTP.

app = typer.Typer(
    help="The HTTP API (FastAPI). Without a subcommand: serve it.\n\nExample: vitalstream api --port 38080",
    invoke_without_command=True,
)


@app.callback()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port; default VITALSTREAM_API_PORT.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (set VITALSTREAM_JWT_SECRET when > 1).")] = 1,
) -> None:
    """Serve the API with uvicorn until interrupted.

    Example: KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:39092 vitalstream api --host 0.0.0.0 --port 8000
    """
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    settings = get_settings()
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port or settings.api_port, workers=workers,
                log_config=_json_logging(settings.log_level), proxy_headers=True)


def _json_logging(level: str) -> dict[str, Any]:
    """uvicorn applies this in every worker process: all logs, its own included, as JSON lines on stdout."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "vitalstream.logs.JsonFormatter"}},
        "handlers": {"stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "json"}},
        "root": {"handlers": ["stdout"], "level": level.upper()},
        "loggers": {name: {"handlers": [], "propagate": True} for name in ("uvicorn", "uvicorn.error",
                                                                            "uvicorn.access")},
    }


@app.command("openapi")
def openapi(indent: Annotated[int, typer.Option(help="JSON indentation.")] = 2) -> None:
    """Print the OpenAPI document (JSON) without connecting to anything.

    Example: vitalstream api openapi > openapi.json
    """
    from api.app import create_app

    typer.echo(json.dumps(create_app().openapi(), indent=indent))


@app.command("set-role")
def change_role(email: Annotated[str, typer.Argument(help="The account's e-mail address.")],
                role: Annotated[Role, typer.Argument(help="user, clinician or admin.")]) -> None:
    """Give an account a role (the only way to make an admin).

    Example: vitalstream api set-role alice@example.org admin
    """
    from api.app import make_engine

    engine = make_engine(get_settings())
    try:
        with engine.begin() as connection:
            user = set_role(connection, email, role)
    except OperationalError as exc:
        raise typer.BadParameter(f"cannot reach the database: {exc.orig}", param_hint="DATABASE_URL") from exc
    finally:
        engine.dispose()
    if user is None:
        raise typer.BadParameter(f"no account has the address {email}", param_hint="EMAIL")
    Console().print(f"{user.email} is now {user.role.value}")
