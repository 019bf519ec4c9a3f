"""Data analysis in a sandbox: upload a CSV, summarise it with pandas, draw a chart with
matplotlib, and bring the chart back as a PNG file.

Run: WARREN_API_URL=... WARREN_API_KEY=... python3 data_analysis.py [output-dir]
Prints the summary table, then "chart saved to <dir>/chart.png (WxH PNG, N bytes)".
"""

from __future__ import annotations

import csv
import io
import random
import struct
import sys
import tempfile
from pathlib import Path

from warren import Sandbox

ANALYSIS = """
import pandas as pd
import matplotlib.pyplot as plt

df = pd.read_csv('/home/user/weather.csv', parse_dates=['day'])
summary = df.groupby('city')['temp_c'].agg(['mean', 'min', 'max']).round(1)
print(summary.to_string())

fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
for city, rows in df.groupby('city'):
    ax.plot(rows['day'], rows['temp_c'], label=city)
ax.set_title('Daily temperature')
ax.set_ylabel('°C')
ax.legend()
fig.autofmt_xdate()
plt.show()
"""


def make_csv() -> bytes:
    """Thirty days of made-up temperatures for three cities (fixed seed)."""
    rng = random.Random(7)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["day", "city", "temp_c"])
    for city, base in (("Oslo", 4.0), ("Lisbon", 17.0), ("Cairo", 24.0)):
        for d in range(1, 31):
            w.writerow([f"2026-04-{d:02d}", city, round(base + 3 * rng.random() + d * 0.1, 1)])
    return out.getvalue().encode()


def main() -> None:
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="warren-chart-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    with Sandbox.create(template="code-interpreter", timeout=300) as sbx:
        sbx.files.write("/home/user/weather.csv", make_csv())
        ex = sbx.run_code(ANALYSIS, on_stdout=lambda m: print(m.line, end=""), timeout=120)
        if ex.error is not None:
            raise SystemExit(f"analysis failed: {ex.error.name}: {ex.error.value}\n{ex.error.traceback}")
        png = next((r.png for r in ex.results if r.png), None)
        if png is None:
            raise SystemExit(f"the analysis produced no chart: {[r.formats() for r in ex.results]}")
    path = out_dir / "chart.png"
    path.write_bytes(png)
    width, height = struct.unpack(">II", png[16:24])
    print(f"chart saved to {path} ({width}x{height} PNG, {len(png)} bytes)")


if __name__ == "__main__":
    main()
