"""``portico webpush keys``: make a VAPID key pair for the settings."""

import base64

import click
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


@click.group()
def webpush():
    """Web push notifications."""


@webpush.command()
def keys():
    """Print a new VAPID key pair as settings lines."""
    private = ec.generate_private_key(ec.SECP256R1())
    raw_private = private.private_numbers().private_value.to_bytes(32, "big")
    raw_public = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    b64 = lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")  # noqa: E731
    click.echo("[webpush]")
    click.echo(f'vapid_private_key = "{b64(raw_private)}"  # keep secret: use $env: or $file:')
    click.echo(f'vapid_public_key = "{b64(raw_public)}"')
