"""The WSGI entry point for gunicorn (``deploy/gunicorn.conf.py``) or any WSGI server.

The app is built from ``PORTICO_CONFIG`` and ``PORTICO_*`` variables, as ``portico serve``
builds it; run ``portico migrate`` before starting it.
"""

from engine.app import create_app

application = create_app()
