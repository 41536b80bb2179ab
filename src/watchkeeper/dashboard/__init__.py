"""The web dashboard: models' health, signals over time, alerts and silences.

Server-rendered pages (Jinja2) with Plotly charts, served by ``watchkeeper serve`` at ``/``;
every asset comes from the package. See docs/dashboard.md.
"""

from watchkeeper.dashboard.routes import dashboard_router

__all__ = ["dashboard_router"]
