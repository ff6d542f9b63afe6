"""`vitalstream metrics`: clinical metrics of a file, computed by the same functions the stream worker uses."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

from producers.importer import CsvLayout, CsvLayoutError, Rejected, read_glucose_csv
from schemas.events import GlucoseReading
from schemas.units import GlucoseUnit
from streams.glucose import summarize_readings

app = typer.Typer(no_args_is_help=True, help="Clinical metrics of a file, as the stream worker computes them.")


@app.callback()
def _group() -> None:
    # A callback keeps `glucose` a subcommand even while it is the group's only one.
    pass


@app.command("glucose")
def glucose(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV file, with a header.")],
    id_col: Annotated[str, typer.Option(help="Column with the subject (user) id.")] = "id",
    time_col: Annotated[str, typer.Option(help="Column with the time (ISO 8601; naive times are in --tz).")] = "time",
    value_col: Annotated[str, typer.Option(help="Column with the glucose value.")] = "gl",
    unit: Annotated[GlucoseUnit, typer.Option(help="Unit of the values.")] = GlucoseUnit.MG_DL,
    tz: Annotated[str, typer.Option(help="IANA time zone of naive times.")] = "UTC",
    window_days: Annotated[float | None, typer.Option(
        help="Only the readings of the last N days before each subject's newest one (the worker's windows "
             "are 1 and 14); default: all readings.", min=0.001, show_default=False)] = None,
) -> None:
    """Print one JSON object keyed by subject id: n, mean, sd, cv, gmi, tir, tbr70, tbr54, tar180, tar250,
    lbgi, hbgi, gri, gri_zone (glucose in mg/dL, times and shares in %; null where undefined).

    Rows are read and validated exactly as `vitalstream import glucose` reads them; rejected rows are
    counted on stderr.

    Example: vitalstream metrics glucose iglu_example_data_5_subject.csv --id-col id --time-col time --value-col gl
    """
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise typer.BadParameter(f"{tz!r} is not an IANA time zone (e.g. Europe/Berlin)", param_hint="--tz") from exc
    layout = CsvLayout(user_col=id_col, time_col=time_col, value_col=value_col, unit=unit, time_zone=tz)
    rejected: Counter[str] = Counter()
    readings: list[GlucoseReading] = []
    try:
        for item in read_glucose_csv(file, layout):
            if isinstance(item, Rejected):
                rejected[item.reason] += 1
            else:
                readings.append(item)
    except CsvLayoutError as exc:
        raise typer.BadParameter(str(exc), param_hint="FILE") from exc
    for reason, count in rejected.most_common():
        typer.echo(f"rejected {count} row(s): {reason}", err=True)
    summaries = summarize_readings(readings, window_days=window_days)
    typer.echo(json.dumps({subject: summary.as_report() for subject, summary in summaries.items()}))
