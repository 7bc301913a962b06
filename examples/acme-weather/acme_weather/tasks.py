"""Background work: a task takes ``app`` first; the engine names it ``acme-weather.<function>``."""

from __future__ import annotations

from engine.models import Site
from engine.tasks import task

from acme_weather import service


@task(max_retries=5)
def refresh_forecasts(app, customer_id: int) -> None:
    """Fetch the forecast for every site of one customer (queued by the Refresh button)."""
    service.refresh(app, customer_id)


@task(periodic="0 * * * *")
def refresh_all(app) -> None:
    """Hourly, from the scheduler: refresh every customer that has a site."""
    for customer_id in {s.customer_id for s in Site.select(Site.customer)}:
        service.refresh(app, customer_id)
