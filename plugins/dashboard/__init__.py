"""The portal shell: the Dashboard section, dashboard cards, navigation and alerts (DASH-1, ACC-3)."""

from __future__ import annotations

from engine import hookimpl
from engine.registry import Route, Section


@hookimpl
def register_settings():
    from plugins.dashboard.schemas import DashboardSettings

    return DashboardSettings


@hookimpl
def register_sections(app):
    return [Section("dashboard", "Dashboard", "/", icon="home", order=0, primary=True)]


@hookimpl
def register_models():
    from plugins.dashboard.models import AlertDismissal

    return [AlertDismissal]


@hookimpl
def register_routes(app):
    from plugins.dashboard import resources

    return [
        Route("/", resources.Home()),
        Route("/alerts/{alert_id}/dismiss", resources.DismissPage()),
        Route("/api/v1/dashboard", resources.DashboardAPI()),
        Route("/api/v1/sections", resources.SectionsAPI()),
        Route("/api/v1/alerts", resources.AlertsAPI()),
        Route("/api/v1/alerts/{alert_id}/dismiss", resources.DismissAPI()),
    ]
