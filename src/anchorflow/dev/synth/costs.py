"""Synthetic ad spend: one CSV per day, one row per campaign of the synthetic traffic, as an ad
platform's daily export would have it (the demo's `files` source reads them)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from anchorflow.dev.synth.amplitude import CAMPAIGNS, SOURCES

HEADER = "day,utm_campaign,utm_source,cost,clicks\n"


def write_cost_files(out: Path, start: datetime, days: int, seed: int = 42) -> list[Path]:
    """`<day>.csv` for each day from `start`; the same seed gives the same files."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(days):
        day = (start + timedelta(days=index)).date()
        clicks = rng.integers(200, 5000, len(CAMPAIGNS))
        cost = np.round(clicks * rng.uniform(0.05, 1.5, len(CAMPAIGNS)), 2)
        rows = [
            f"{day},{campaign},{source},{c:.2f},{n}\n"
            for campaign, source, c, n in zip(CAMPAIGNS, SOURCES, cost, clicks, strict=True)
        ]
        path = out / f"{day}.csv"
        text = HEADER + "".join(rows)
        if not path.exists() or path.read_text() != text:  # rewriting would change its version
            path.write_text(text)
        paths.append(path)
    return paths
