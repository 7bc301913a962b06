"""A tiny partner-style plugin for the background-work tests.

Its tasks leave a ``JobRun`` row for every run, so a test can see what ran,
how often, in which process and under which message id. The queue they use
is ``PORTICO_TEST_JOBS_QUEUE`` (default ``jobs``), so a test on a shared
Redis or RabbitMQ can have queues of its own. Subprocesses find it through the
``portico.plugins`` entry point of a throw-away ``.dist-info`` (see
``tests/test_worker.py``).
"""

from __future__ import annotations

import os

from engine import hookimpl


def queue_name() -> str:
    return os.environ.get("PORTICO_TEST_JOBS_QUEUE", "jobs")


@hookimpl
def register_models():
    from jobs_plugin.models import JobRun

    return [JobRun]


@hookimpl
def register_actors():
    from jobs_plugin import tasks

    return tasks.actors(queue_name())


@hookimpl(optionalhook=True)
def provision_addon(app, service, addon, action):
    """Count every call a provisioner gets (the add-ons' built-in one answers): a test sees
    whether redelivered work provisioned anything twice."""
    from jobs_plugin.models import JobRun

    JobRun.create(name="provision", arg=f"{addon.id}:{action}", pid=os.getpid())
    return None
