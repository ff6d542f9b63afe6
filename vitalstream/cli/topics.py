"""`vitalstream topics`: the topic registry and its creation on the broker."""

from __future__ import annotations

import typer
from confluent_kafka import KafkaException
from rich.console import Console
from rich.table import Table

from schemas.topics import TOPICS
from vitalstream.config import get_settings
from vitalstream.kafka_admin import TopicMismatchError, admin_client, create_topics

app = typer.Typer(no_args_is_help=True, help="Kafka topics.")


@app.command("create")
def create() -> None:
    """Create every topic of the registry that does not exist yet (safe to run again).

    Example: KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:39092 vitalstream topics create
    """
    settings = get_settings()
    try:
        outcomes = create_topics(admin_client(settings.kafka))
    except (TopicMismatchError, KafkaException) as exc:
        raise typer.BadParameter(str(exc), param_hint="topics") from exc
    for outcome in outcomes:
        Console().print(f"{outcome.outcome:>8}  {outcome.name} ({outcome.partitions} partitions)")


@app.command("list")
def list_topics() -> None:
    """Show the registry: name, partitions, retention, clean-up policy, key.

    Example: vitalstream topics list
    """
    table = Table("topic", "partitions", "retention (days)", "cleanup", "key", "payload")
    for topic in TOPICS.values():
        table.add_row(topic.name, str(topic.partitions), f"{topic.retention_ms / 86_400_000:g}",
                      topic.cleanup_policy, topic.key, topic.description)
    Console().print(table)
