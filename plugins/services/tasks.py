"""The periodic renewal job: renew what is due, expire what has ended."""

from __future__ import annotations

from engine.tasks import task


@task(periodic="*/10 * * * *")
def renew_services(app) -> dict:
    """Every 10 minutes: base plans renew on their date when auto-renew is on; ended services expire."""
    from plugins.services.service import run_renewals

    return run_renewals(app)
