"""``portico weather ...``: commands for the operator."""

from __future__ import annotations

import click

from engine import db
from engine.models import Customer, Site


def add_commands(cli: click.Group, app_factory) -> None:
    @cli.group()
    def weather():
        """acme-weather: forecasts at customers' sites."""

    @weather.command("refresh")
    @click.option(
        "--customer",
        "number",
        metavar="NUMBER",
        help="Only this customer (the number they quote, e.g. C-100001).",
    )
    def refresh(number):
        """Fetch the forecasts now (the scheduler also does it every hour)."""
        from acme_weather import service

        app = app_factory()
        with db.connection():
            if number:
                customer = Customer.get_or_none(Customer.number == number)
                if customer is None:
                    raise click.ClickException(f"no customer numbered {number}")
                ids = [customer.id]
            else:
                ids = sorted({s.customer_id for s in Site.select(Site.customer)})
            rows = sum(service.refresh(app, customer_id) for customer_id in ids)
        click.echo(f"{rows} forecasts stored for {len(ids)} customers")
