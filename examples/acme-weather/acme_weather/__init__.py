"""acme-weather: an example partner plugin for Portico (hookimpls only: import and return).

Found by Portico through the ``portico.plugins`` entry point in ``setup.cfg``.
"""

from __future__ import annotations

from engine import hookimpl
from engine.i18n import N_
from engine.registry import Card, Route, Section

__version__ = "0.1.0"
NAME = "acme-weather"  # the entry point's name: our settings, actors and static prefix use it


@hookimpl
def register_settings():
    from acme_weather.schemas import WeatherSettings

    return WeatherSettings


@hookimpl
def register_models():
    from acme_weather.models import Forecast

    return [Forecast]


@hookimpl
def register_routes(app):
    from acme_weather import resources

    page, api = resources.WeatherPage(), resources.WeatherAPI()
    return [
        Route("/weather", page),
        Route("/weather/refresh", page, suffix="refresh"),
        Route("/api/v1/weather", api),
        Route("/api/v1/weather/refresh", api, suffix="refresh"),
        Route("/api/v1/weather/sites/{site_id}", api, suffix="site"),
    ]


@hookimpl
def register_sections(app):
    # The shell translates section titles; N_ marks the string for extraction into our locale/.
    return [Section("weather", N_("Weather"), "/weather", icon="sun", order=70)]


@hookimpl
def dashboard_cards(app, ctx):
    from acme_weather import service

    sites = service.today(app, ctx.customer_id)
    if not sites:
        return []
    return [
        Card("weather", N_("Weather today"), "acme_weather/card.html", {"sites": sites}, order=80)
    ]


@hookimpl
def register_actors():
    from acme_weather import tasks

    return [tasks.refresh_forecasts, tasks.refresh_all]


@hookimpl
def register_commands(cli, app_factory):
    from acme_weather.commands import add_commands

    add_commands(cli, app_factory)


@hookimpl
def demo_data(app, demo):
    from acme_weather import service

    for customer in demo.get("customers", {}).values():
        service.refresh(app, customer.id)
