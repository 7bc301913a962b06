"""Observability (OPS-4): logs with request ids, health endpoints, Prometheus metrics, Sentry.

``logs`` formats every line (text or JSON) and carries the request id; ``web`` is the
Falcon middleware that sets it and times requests; ``metrics`` holds the Prometheus
series and renders ``/metrics``; ``health`` answers ``/livez``, ``/readyz`` and
``/metrics``; ``errors`` reports to Sentry when a DSN is set. See docs/monitoring.md.
"""
