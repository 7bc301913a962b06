"""Stripe payments (BILL-2, BILL-5): Elements in the browser, SetupIntents, PaymentIntents, webhooks.

Configure ``[stripe]`` (keys, webhook signing secret) and set ``[billing]
provider = "stripe"``. Without keys the plugin offers no provider.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from engine import hookimpl
from engine.settings import secret


class StripeSettings(Schema):
    secret_key = secret(
        fields.String(
            load_default="",
            metadata={"description": "sk_live_... or sk_test_... (use $env:STRIPE_SECRET_KEY)"},
        )
    )
    publishable_key = fields.String(load_default="", metadata={"description": "pk_..."})
    webhook_secret = secret(
        fields.String(
            load_default="",
            metadata={
                "description": "the endpoint's signing secret, whsec_... (for /webhooks/stripe)"
            },
        )
    )
    api_base = fields.String(
        load_default="https://api.stripe.com",
        validate=validate.URL(require_tld=False, schemes={"http", "https"}),
        metadata={"description": "Stripe's API address (tests point it at localstripe)"},
    )
    js_url = fields.String(
        load_default="https://js.stripe.com/v3/",
        validate=validate.URL(require_tld=False, schemes={"http", "https"}),
        metadata={"description": "where stripe.js is loaded from"},
    )
    max_network_retries = fields.Integer(
        load_default=2,
        validate=validate.Range(0, 5),
        metadata={
            "description": "retries of a failed API call (safe: every call has an idempotency key)"
        },
    )
    webhook_tolerance = fields.Integer(
        load_default=300,
        validate=validate.Range(10, 3600),
        metadata={"description": "seconds a webhook may be old"},
    )


@hookimpl
def register_settings():
    return StripeSettings


@hookimpl
def payment_providers(app):
    conf = app.settings.plugin("stripe")
    if not (conf.get("secret_key") and conf.get("publishable_key")):
        if app.settings.plugin("billing").get("provider") == "stripe":
            from engine.plugins import PluginError

            raise PluginError(
                "billing.provider is 'stripe': set stripe.secret_key and "
                "stripe.publishable_key (and stripe.webhook_secret)"
            )
        return []
    from plugins.stripe.provider import StripeProvider

    return [StripeProvider(conf)]
