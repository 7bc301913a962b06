"""An S3-compatible server for the storage tests: moto's server mode, on a free loopback port.

Fixtures (imported by ``tests/conftest.py``):

- ``s3_server``: one ``python -m moto.server`` per test session (``.url``);
- ``s3``: a new, empty bucket on it for one test; ``s3.settings(**more)`` are the
  ``make_app(storage=...)`` keywords that store files there through boto3.

The storage talks to it over HTTP with the real boto3 client, as it would to AWS or MinIO.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest
import requests

from engine.testing import need_service
from stripe_fixtures import free_port

ACCESS_KEY, SECRET_KEY = "portico-test-key", "portico-test-secret"


@dataclass
class S3Server:
    url: str
    process: subprocess.Popen


@dataclass
class Bucket:
    server: S3Server
    name: str

    def settings(self, **more) -> dict:
        return {
            "backend": "s3",
            "s3_bucket": self.name,
            "s3_endpoint_url": self.server.url,
            "s3_region": "eu-west-2",
            "s3_access_key_id": ACCESS_KEY,
            "s3_secret_access_key": SECRET_KEY,
            "s3_addressing_style": "path",
            "s3_prefix": "portico/",
            **more,
        }

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.server.url,
            region_name="eu-west-2",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    try:
        import boto3  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError as exc:
        need_service("moto server (pip install 'moto[server]' boto3)", exc)
    folder = tmp_path_factory.mktemp("moto")
    port = free_port()
    log = (folder / "moto.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ},
        start_new_session=True,
    )
    server = S3Server(f"http://127.0.0.1:{port}", process)
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{server.url}/moto-api/", timeout=2).status_code < 500:
                break
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            need_service("moto server", RuntimeError((folder / "moto.log").read_text()))
        time.sleep(0.1)
    yield server
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture
def s3(s3_server) -> Bucket:
    bucket = Bucket(s3_server, f"portico-{secrets.token_hex(4)}")
    bucket.client().create_bucket(
        Bucket=bucket.name, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"}
    )
    return bucket
