"""Open a report in real headless Chromium (Debian's, driven by Playwright) and look at it.

Each chart is judged on what the browser drew: the data points plotly.js holds, the marks
it drew inside the plot area, and the coloured pixels of the chart's own screenshot (axes,
text and grid lines are grey or black; bars, lines and heat cells are coloured).
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from programs import require_program

CHROMIUM_ARGS = [
    "--no-sandbox",  # root in a container
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium reaches for Google's hosts, which a closed network refuses.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Per chart: points plotly holds, marks drawn in the plot area, coloured pixels.
MEASURE = """
() => Array.from(document.querySelectorAll('figure.chart'), (figure) => {
  const plot = figure.querySelector('.js-plotly-plot');
  let points = 0, marks = 0;
  if (plot) {
    // calcdata: the points plotly.js computed from the data, per trace (a heat map's cells
    // are in its one entry's z).
    for (const trace of plot.calcdata) {
      const cells = trace.length && trace[0].z;
      points += cells ? cells.flat().filter((v) => v !== null && !Number.isNaN(v)).length
                      : trace.filter((p) => !Number.isNaN(p.y) || !Number.isNaN(p.x)).length;
    }
    for (const mark of plot.querySelectorAll(
        '.cartesianlayer .trace path, .cartesianlayer .hm image')) {
      const box = mark.getBoundingClientRect();
      if (box.width > 0 || box.height > 0) marks += 1;
    }
  }
  return {id: figure.id.replace('chart-', ''), points: points, marks: marks,
          text: figure.innerText};
})
"""


@dataclass(frozen=True)
class Chart:
    id: str
    points: int  # values plotly.js holds for the chart's traces
    marks: int  # SVG marks drawn inside its plot area
    coloured_pixels: int  # in the chart's own screenshot
    text: str


@dataclass(frozen=True)
class Page:
    charts: dict[str, Chart]
    requests: list[str]  # every URL the page asked for
    errors: list[str]  # console errors and uncaught exceptions
    render_seconds: float


def coloured_pixels(png: bytes) -> int:
    """Pixels whose colour is clearly not a grey (text, axes and grid lines are grey)."""
    if not png:
        return 0
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return int(((pixels.max(axis=2) - pixels.min(axis=2)) > 60).sum())


def open_report(path: Path, screenshots: Path | None = None) -> Page:
    """Render the report at path and measure every chart; screenshots go to a folder."""
    from playwright.sync_api import sync_playwright

    chromium = require_program("chromium")
    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("request", lambda request: requests.append(request.url))
            page.on(
                "console",
                lambda message: errors.append(message.text) if message.type == "error" else None,
            )
            page.on("pageerror", lambda error: errors.append(str(error)))
            started = time.perf_counter()
            page.goto(path.as_uri())
            # The report marks the body once plotly.js has drawn every figure.
            page.wait_for_function("() => document.body.dataset.charts !== undefined")
            render_seconds = time.perf_counter() - started
            charts = {}
            for measured in page.evaluate(MEASURE):
                # The plot alone: a "No data" box or a legend must not count as data.
                plot = page.locator(f"#plot-{measured['id']}")
                png = plot.screenshot() if plot.count() else b""
                if screenshots is not None and png:
                    screenshots.mkdir(parents=True, exist_ok=True)
                    (screenshots / f"{measured['id']}.png").write_bytes(png)
                charts[measured["id"]] = Chart(coloured_pixels=coloured_pixels(png), **measured)
        finally:
            browser.close()
    return Page(charts, requests, errors, render_seconds)


def assert_draws_data(chart: Chart) -> None:
    """The chart holds data, drew it, and its screenshot shows it."""
    assert "No data" not in chart.text and "No backtest" not in chart.text, chart
    assert chart.points > 0, f"{chart.id}: plotly holds no data"
    assert chart.marks > 0, f"{chart.id}: nothing drawn in the plot area"
    # A legend's swatches alone stay well under this; drawn data passes it.
    assert chart.coloured_pixels > 1500, f"{chart.id}: its screenshot shows no data"
