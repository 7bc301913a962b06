"""The Weather section: a portal page and a JSON API, both calling ``service``."""

from __future__ import annotations

import falcon

from engine.api import operation
from engine.context import get_owned
from engine.models import Site

from acme_weather import schemas, service


class WeatherPage:
    """``GET /weather`` and the Refresh button, ``POST /weather/refresh``.

    Resources are customer-only unless they say otherwise (``auth = "public"``);
    the engine checks the CSRF token of the form before ``on_post_refresh`` runs.
    """

    def on_get(self, req, resp):
        ctx = req.context
        ctx.extra["section"] = "weather"  # highlights our entry in the navigation
        ctx.app.page(
            req,
            resp,
            "acme_weather/weather.html",
            sites=service.forecasts_for(ctx.app, ctx.require_customer()),
            queued=req.get_param_as_bool("queued") or False,
        )

    def on_post_refresh(self, req, resp):
        service.request_refresh(req.context)
        raise falcon.HTTPSeeOther("/weather?queued=1")


class WeatherAPI:
    """``/api/v1/weather``: the same data as the page, for integrations."""

    @operation("Forecast at each of your sites", response=schemas.SiteForecastList)
    def on_get(self, req, resp):
        ctx = req.context
        return {"items": service.forecasts_for(ctx.app, ctx.require_customer()), "next": None}

    @operation("Forecast at one of your sites", response=schemas.SiteForecast)
    def on_get_site(self, req, resp, site_id):
        site = get_owned(Site, site_id, req.context)  # another customer's site is a 404
        return service.forecasts_for(req.context.app, site.customer_id, site.id)[0]

    @operation("Refresh your forecast in the background", response=schemas.Queued, status=202)
    def on_post_refresh(self, req, resp):
        return {"queued": service.request_refresh(req.context)}
