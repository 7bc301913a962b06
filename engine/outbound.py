"""Requests to URLs that customers or operators give us (SEC-2): https, public addresses only.

Web push endpoints use it today; webhook URLs will. A URL is checked twice: when it is
registered, and again each time something is sent, because by then its name may resolve
somewhere else (DNS rebinding). The request then goes to an address that was checked,
without a second look-up; TLS still checks the certificate against the host name (SNI)::

    from engine import outbound

    outbound.check_url(app, url)              # registering: UnsafeURL is a field error
    with outbound.session(app, url) as http:  # sending: checked again, pinned to the address
        http.post(url, data=body, timeout=10)

Refused: any scheme but https, a user name or password in the URL, and any address that is
not public (``refusal()``): loopback, private (RFC 1918), shared (CGNAT), link-local (and
with it the cloud metadata service, 169.254.169.254 and fd00:ec2::254), unspecified,
multicast, reserved, benchmarking and documentation ranges, and their IPv6 kin; an IPv6
address that carries an IPv4 one (IPv4-mapped, NAT64, 6to4, Teredo) is judged by the IPv4
address it carries. A name is refused when any of its addresses is.

``[outbound] unsafe_allow_loopback_for_tests`` lets loopback through, for tests that run a
server on 127.0.0.1; ``portico check`` warns while it is on. The session ignores
``HTTP(S)_PROXY`` (a proxy would look the name up again) and follows no redirects; it
trusts ``REQUESTS_CA_BUNDLE`` when set, like any ``requests`` client.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from engine.i18n import N_

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeURL(ValueError):
    """The URL may not be requested; the message says why, for a field error or a log line."""


class UnresolvableURL(UnsafeURL):
    """The host name did not resolve (now): refused at registration, retried when sending."""


def _nets(
    *pairs: tuple[str, str],
) -> list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]]:
    return [(ipaddress.ip_network(net), why) for net, why in pairs]


PRIVATE = "a private address (RFC 1918)"
DOCS = "a documentation address"
LOOPBACK = "a loopback address"
#: Every IPv4 range that is not the public internet (IANA special-purpose registry).
REFUSED_V4 = _nets(
    ("0.0.0.0/8", "an unspecified address"),
    ("10.0.0.0/8", PRIVATE),
    ("100.64.0.0/10", "a shared address (carrier-grade NAT)"),
    ("127.0.0.0/8", LOOPBACK),
    ("169.254.0.0/16", "a link-local address (the cloud metadata service lives there)"),
    ("172.16.0.0/12", PRIVATE),
    ("192.0.0.0/24", "an IETF protocol address"),
    ("192.0.2.0/24", DOCS),
    ("192.88.99.0/24", "a 6to4 relay address"),
    ("192.168.0.0/16", PRIVATE),
    ("198.18.0.0/15", "a benchmarking address"),
    ("198.51.100.0/24", DOCS),
    ("203.0.113.0/24", DOCS),
    ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved address"),
)
#: IPv6 ranges refused outright; the ones that carry IPv4 are judged by it (``_embedded``).
REFUSED_V6 = _nets(
    ("::1/128", LOOPBACK),
    ("::/96", "an unspecified or IPv4-compatible address"),
    ("64:ff9b:1::/48", "a local-use NAT64 address"),
    ("100::/64", "a discard-only address"),
    ("2001:db8::/32", DOCS),
    ("3fff::/20", DOCS),
    ("fc00::/7", "a unique local address (the cloud metadata service lives there)"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),
    ("ff00::/8", "a multicast address"),
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, NAT64, 6to4, Teredo), if any."""
    if ip.ipv4_mapped:
        return [ip.ipv4_mapped]
    if ip in NAT64:
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip.sixtofour:
        return [ip.sixtofour]
    if ip.teredo:
        return list(ip.teredo)  # the Teredo server and the client behind it
    return []


def refusal(address: str | Address, allow_loopback: bool = False) -> str | None:
    """Why ``address`` is not a public one to send to, or None when it is."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        carried = _embedded(ip)
        if carried:
            reasons = [refusal(v4) for v4 in carried]
            return next((f"{r} inside an IPv6 address" for r in reasons if r), None)
        if ip.scope_id:
            return "a scoped (link-local) address"
    for network, why in REFUSED_V4 if ip.version == 4 else REFUSED_V6:
        if ip in network:
            return None if allow_loopback and why == LOOPBACK else why
    if not ip.is_global:  # what IANA lists beyond the ranges above (e.g. 2001::/23)
        return "not a public address"
    return None


def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


#: Looks a name up: ``(host, port) -> [address, ...]``. Tests replace it to stand in for DNS.
resolve_host = _getaddrinfo


@dataclass(frozen=True)
class Target:
    """A checked URL: its host and port, and the addresses it may be sent to, in order."""

    url: str
    host: str
    port: int
    addresses: tuple[str, ...]


def _allow_loopback(app) -> bool:
    return bool(app.settings.outbound.unsafe_allow_loopback_for_tests)


def check_url(app, url: str) -> Target:
    """Check ``url`` now: https, no credentials, and every address it resolves to public."""
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError:
        raise UnsafeURL(N_("Not a valid URL.")) from None
    if parts.scheme.lower() != "https":
        raise UnsafeURL(N_("Only https URLs are allowed."))
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL(N_("A URL may not carry a user name or password."))
    host = (parts.hostname or "").rstrip(".")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise UnsafeURL(N_("Not a valid host name.")) from None
    if not host:
        raise UnsafeURL(N_("The URL has no host."))
    try:
        addresses = tuple(resolve_host(host, port))
    except (OSError, UnicodeError):
        addresses = ()
    if not addresses:
        raise UnresolvableURL(N_("The host %(host)s could not be found.", host=host))
    for address in addresses:
        why = refusal(address, _allow_loopback(app))
        if why:
            raise UnsafeURL(
                N_(
                    "The host %(host)s is at %(address)s, %(why)s: only public internet "
                    "addresses are allowed.",
                    host=host,
                    address=str(address),
                    why=why,
                )
            )
    return Target(url=url, host=host, port=port, addresses=addresses)


class PinnedAdapter(HTTPAdapter):
    """Sends to the checked addresses of one ``Target`` (the next one if a connection cannot
    be made); the Host header and TLS (SNI, the certificate's name) still use the host name."""

    def __init__(self, target: Target):
        self.target = target
        self.address = target.addresses[0]
        super().__init__(max_retries=0)

    def _same_origin(self, url: str) -> None:
        parts = urlsplit(url)
        if (
            parts.scheme != "https"
            or (parts.hostname or "").rstrip(".") != self.target.host
            or (parts.port or 443) != self.target.port
        ):
            raise UnsafeURL(
                N_(
                    "Only %(host)s:%(port)s was checked.",
                    host=self.target.host,
                    port=self.target.port,
                )
            )

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        self._same_origin(request.url)
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        host_params["host"] = self.address
        # urllib3 takes it; types-requests' _PoolKwargs lists fewer keys than urllib3 accepts
        pool_kwargs["server_hostname"] = self.target.host  # type: ignore[typeddict-unknown-key]
        return host_params, pool_kwargs

    def add_headers(self, request, **kwargs) -> None:
        port = "" if self.target.port == 443 else f":{self.target.port}"
        host = f"[{self.target.host}]" if ":" in self.target.host else self.target.host
        request.headers["Host"] = host + port

    def send(self, request, *args, **kwargs):
        for n, address in enumerate(self.target.addresses):
            self.address = address
            try:
                return super().send(request, *args, **kwargs)
            except (requests.ConnectTimeout, requests.ConnectionError) as exc:
                refused = isinstance(exc, requests.ConnectTimeout) or isinstance(
                    getattr(exc.args[0] if exc.args else None, "reason", None), NewConnectionError
                )
                if not refused or n == len(self.target.addresses) - 1:
                    raise  # the request may have gone out: never send it twice


def session(app, url: str) -> requests.Session:
    """A ``requests`` session for ``url`` alone, checked now and pinned to what was checked.

    Raises ``UnsafeURL`` (refused: do not send) or ``UnresolvableURL`` (try again later).
    """
    target = check_url(app, url)
    http = requests.Session()
    http.trust_env = False  # no proxy from the environment: it would resolve the name itself
    http.verify = os.environ.get("REQUESTS_CA_BUNDLE") or True
    http.max_redirects = 0  # a redirect is an error, never a second, unchecked request
    adapter = PinnedAdapter(target)
    http.mount("https://", adapter)
    http.mount("http://", adapter)
    return http


__all__ = [
    "UnsafeURL",
    "UnresolvableURL",
    "Target",
    "check_url",
    "session",
    "refusal",
    "resolve_host",
]
