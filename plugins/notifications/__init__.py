"""Notifications (NOT-1..4): preferences, routing to channels, digests, expiry warnings."""

from __future__ import annotations

from engine import hookimpl
from engine.registry import Route


@hookimpl
def register_models():
    from plugins.notifications.models import DigestItem, NotificationPreference

    return [NotificationPreference, DigestItem]


@hookimpl
def register_routes(app):
    from plugins.notifications import resources

    return [
        Route("/api/v1/account/notification-preferences", resources.PreferencesAPI()),
        Route("/account/notifications", resources.PreferencesPage()),
    ]


@hookimpl
def register_actors():
    from plugins.notifications.tasks import send_digests, warn_expiring_services

    return [send_digests, warn_expiring_services]


@hookimpl
def notification_route(app, notice, channel):
    from plugins.notifications.service import route

    return route(app, notice, channel)


@hookimpl
def balance_threshold(app, customer_id, balance_type):
    from plugins.notifications.service import threshold_for_customer

    return threshold_for_customer(customer_id, balance_type)


@hookimpl
def balance_thresholds(app, customer_ids, balance_type):
    from plugins.notifications.service import thresholds_for_customers

    return thresholds_for_customers(customer_ids, balance_type)


@hookimpl(optionalhook=True)  # the usage plugin's hook; it may be disabled
def balance_low(app, service, balance, threshold):
    from plugins.notifications.events import tell_balance_low

    tell_balance_low(app, service, balance, threshold)


@hookimpl(optionalhook=True)  # the services plugin's hook; it may be disabled
def service_status_changed(app, service, old_status, new_status, reason):
    from plugins.notifications.events import tell_status_changed

    tell_status_changed(app, service, old_status, new_status, reason)
