"""`vitalstream worker inference`: the meal-photo consumer (registered on the `worker` group by the CLI root)."""

from __future__ import annotations

from typing import Annotated

import typer

from vitalstream.config import get_settings


def inference(
    metrics_port: Annotated[int | None, typer.Option(
        "--metrics-port", help="Port of the Prometheus /metrics endpoint [default: VITALSTREAM_INFERENCE_METRICS_PORT]",
        show_default=False)] = None,
) -> None:
    """Analyse meal photos: consume meals with a photo, send the photos to Triton in batches, publish
    MealAnalyzed events; bad photos go to the dead-letter topic. Run it more than once to share the partitions.

    Example: vitalstream worker inference --metrics-port 38092
    """
    from inference_consumer.worker import run

    settings = get_settings()
    run(settings, metrics_port if metrics_port is not None else settings.inference_metrics_port)
