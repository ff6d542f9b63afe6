"""The AGP chart as a PNG: 5-95 % and 25-75 % bands, the median, and the 70 and 180 mg/dL target lines.

Drawn with matplotlib's object API on the Agg canvas (no pyplot, no global state), so requests in different
threads never share a figure. matplotlib is imported on first use: most processes never draw a chart.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from streams.metrics.cgm import TIR_HIGH_MG_DL, TIR_LOW_MG_DL

WIDTH_IN, HEIGHT_IN, DPI = 10.0, 5.0, 100
MINUTES_PER_DAY = 24 * 60
#: The y axis shows at least this range (mg/dL), more if the data need it.
Y_FLOOR_MG_DL, Y_CEILING_MG_DL = 40.0, 350.0


@dataclass(frozen=True, slots=True)
class AgpCurve:
    """Bin start (minutes after local midnight) and the 5/25/50/75/95th percentiles (mg/dL) of each bin."""

    minutes: Sequence[float]
    p5: Sequence[float]
    p25: Sequence[float]
    p50: Sequence[float]
    p75: Sequence[float]
    p95: Sequence[float]


def render_agp_png(curve: AgpCurve, bin_minutes: int, title: str) -> bytes:
    """The chart as PNG bytes (1000 × 500 px); an empty curve gives a chart saying there is no data."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    # Each value is drawn at the middle of its bin.
    x = [(m + bin_minutes / 2) / 60 for m in curve.minutes]
    if x:
        axes.fill_between(x, curve.p5, curve.p95, color="#9ecae1", alpha=0.6, linewidth=0, label="5-95 %")
        axes.fill_between(x, curve.p25, curve.p75, color="#3182bd", alpha=0.6, linewidth=0, label="25-75 %")
        axes.plot(x, curve.p50, color="#08306b", linewidth=2, label="median")
    else:
        axes.text(12, (Y_FLOOR_MG_DL + Y_CEILING_MG_DL) / 2, "No CGM readings in this period", ha="center",
                  va="center", fontsize=14, color="#555555")
    for target in (TIR_LOW_MG_DL, TIR_HIGH_MG_DL):
        axes.axhline(target, color="#31a354", linewidth=1.2, linestyle="--")
    axes.axhspan(TIR_LOW_MG_DL, TIR_HIGH_MG_DL, color="#31a354", alpha=0.06, zorder=0)
    top = max([Y_CEILING_MG_DL, *curve.p95]) if x else Y_CEILING_MG_DL
    bottom = min([Y_FLOOR_MG_DL, *curve.p5]) if x else Y_FLOOR_MG_DL
    axes.set_ylim(bottom, top)
    axes.set_xlim(0, MINUTES_PER_DAY / 60)
    axes.set_xticks(range(0, 25, 3), [f"{h:02d}:00" for h in range(0, 25, 3)])
    axes.set_xlabel("time of day (local)")
    axes.set_ylabel("glucose (mg/dL)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if x:
        axes.legend(loc="upper right", fontsize=9)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
