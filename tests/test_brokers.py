"""The broker by URL: each kind carries a plugin's task from the outbox to a real worker.

Redis and RabbitMQ are the real servers on 127.0.0.1 (a namespace and queue
names of the test's own); ``sqlite:///`` is the embedded default.
"""

import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker

from engine import db
from engine.queue_sqlite import SQLiteBroker
from engine.tasks import make_broker
from jobs_plugin.harness import (  # noqa: F401  (fixtures)
    RunningWorker,
    free_port,
    jobs_app,
    jobs_plugin,
    queues,
    runs,
    wait_for,
)

KINDS = ["sqlite", pytest.param("redis", marks=pytest.mark.redis), "amqp"]


@pytest.fixture(params=KINDS)
def broker_kind(request):
    return request.param


def test_broker_url_picks_the_broker(tmp_path):
    assert isinstance(make_broker("redis://127.0.0.1:6379/0?namespace=x"), RedisBroker)
    assert isinstance(make_broker("amqp://guest:guest@127.0.0.1:5672/%2F"), RabbitmqBroker)
    embedded = make_broker(f"sqlite:///{tmp_path / 'q.sqlite3'}")
    assert isinstance(embedded, SQLiteBroker) and (tmp_path / "q.sqlite3").exists()


def test_redis_namespace_and_connection_options_come_from_the_url():
    broker = make_broker("redis://127.0.0.1:6379/3?namespace=acme&socket_timeout=7")
    assert broker.namespace == "acme"
    kwargs = broker.client.connection_pool.connection_kwargs
    assert kwargs["db"] == 3 and kwargs["socket_timeout"] == 7.0
    assert kwargs["socket_connect_timeout"] == 5  # our default: never hang on a dead host


def test_amqp_publishes_with_confirms_and_time_outs():
    broker = make_broker("amqp://guest:guest@127.0.0.1:5672/%2F?socket_timeout=3")
    assert broker.confirm_delivery is True  # a row is marked sent only once RabbitMQ has it
    assert broker.parameters.socket_timeout == 3
    assert broker.parameters.blocked_connection_timeout == 30


def test_unknown_broker_scheme_is_a_clear_error():
    with pytest.raises(ValueError, match="broker_url: unsupported scheme 'kafka'"):
        make_broker("kafka://127.0.0.1:9092")


def test_plugin_task_goes_through_outbox_to_a_real_worker(jobs_app, queues, broker_kind, tmp_path):
    app = jobs_app(broker_url=queues.url(broker_kind, tmp_path))
    actor = app.tasks.actors["jobs_plugin.tasks.record"]
    assert actor.queue_name == queues.queue
    with db.connection(), db.database.atomic():
        message_id = app.tasks.enqueue("jobs_plugin.tasks.record", "hello")
    assert app.tasks.pending() == 1
    assert app.tasks.relay() == 1
    assert app.tasks.pending() == 0
    with RunningWorker(app):
        wait_for(lambda: runs("record") == ["hello"], what="the task to run")
    from jobs_plugin.models import JobRun

    with db.connection():
        run = JobRun.get(JobRun.name == "record")
    assert run.message_id == message_id  # current_message_id() inside the task


def test_retries_and_delays_work_on_every_broker(jobs_app, queues, broker_kind, tmp_path):
    app = jobs_app(broker_url=queues.url(broker_kind, tmp_path))
    with db.connection():
        app.tasks.enqueue("jobs_plugin.tasks.flaky", "f1", 2)
        app.tasks.enqueue("jobs_plugin.tasks.record", "later", delay_ms=300)
    app.tasks.relay()
    with RunningWorker(app):
        wait_for(lambda: runs("flaky-done", "f1") and runs("record"), what="retry and delay")
    assert runs("flaky-attempt", "f1") == ["f1"] * 3  # failed twice, then done
    assert runs("record") == ["later"]


def test_a_task_that_enqueues_sends_its_work_on(jobs_app, queues, broker_kind, tmp_path):
    app = jobs_app(broker_url=queues.url(broker_kind, tmp_path))
    with db.connection():
        app.tasks.enqueue("jobs_plugin.tasks.chain", "c")
    app.tasks.relay()
    with RunningWorker(app):
        wait_for(lambda: runs("record") == ["c-child"], what="the chained task")
    assert app.tasks.pending() == 0


# -- /healthz ----------------------------------------------------------------------


def test_healthz_reports_each_working_broker(make_app, queues, broker_kind, tmp_path):
    from engine.testing import Client

    app = make_app(broker_url=queues.url(broker_kind, tmp_path))
    result = Client(app).get("/healthz")
    assert result.status_code == 200
    assert result.json["broker"] == "ok" and result.json["outbox_pending"] == 0


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:{port}/0",
        "amqp://guest:guest@127.0.0.1:{port}/%2F",
    ],
)
def test_healthz_is_503_when_the_broker_is_unreachable(make_app, url):
    from engine.testing import Client

    app = make_app(broker_url=url.format(port=free_port()))
    result = Client(app).get("/healthz")
    assert result.status_code == 503
    assert result.json["status"] == "degraded"
    assert result.json["database"] == "ok"
    assert result.json["broker"].startswith("error: ")


def test_healthz_is_503_when_the_embedded_queue_file_is_gone(make_app, tmp_path):
    from engine.testing import Client

    path = tmp_path / "gone" / "queue.sqlite3"
    app = make_app(broker_url=f"sqlite:///{path}")
    client = Client(app)
    assert client.get("/healthz").status_code == 200
    for leftover in path.parent.iterdir():
        leftover.unlink()
    path.parent.rmdir()  # e.g. the data volume was unmounted
    result = client.get("/healthz")
    assert result.status_code == 503
    assert result.json["broker"].startswith("error: ")
    assert not path.exists()  # the check never re-creates an empty queue
