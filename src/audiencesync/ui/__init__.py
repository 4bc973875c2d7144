"""The web dashboard: audiences, runs, key coverage, matched size over time, the stream and conversions.

Server-side pages (Jinja2 templates) with one vendored chart library (uPlot, `static/vendor/`), so
the pages work without the internet. Served by `audiencesync serve` at `/` and by `audiencesync ui`.
It shows counts, names and statuses only: every number comes from the state file (`state/dashboard.py`)
or the running server's metrics, and its two buttons run the one pipeline (`pipeline.sync`).
"""

from audiencesync.ui.app import create_dashboard

__all__ = ["create_dashboard"]
