"""Shared file storage (OPS-5): the three backends keep one contract; settings; copying between them.

The S3 backend runs against moto's server on loopback (``s3_fixtures``) through the real
boto3 client; the database backend on SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
import threading

import pytest
from click.testing import CliRunner

from engine.settings import SettingsError, load_settings
from engine.storage import DatabaseStorage, LocalStorage, S3Storage, copy
from engine.testing import TEST_ENVIRON

BACKENDS = ["local", "database", "s3"]


@pytest.fixture(params=BACKENDS)
def storage(request, make_app):
    """``app.storage`` of each backend."""
    conf = {"backend": request.param}
    if request.param == "s3":
        conf = request.getfixturevalue("s3").settings()
    return make_app(storage=conf).storage


@pytest.mark.spec("OPS-5")
def test_a_file_is_stored_once_and_read_back_with_its_metadata(storage):
    key = "invoices/7/INV-000001.pdf"
    assert not storage.exists(key) and storage.info(key) is None and storage.open(key) is None
    assert storage.put(key, b"%PDF-first", "application/pdf") is True
    assert storage.put(key, b"%PDF-second", "application/pdf") is False  # never overwritten
    assert storage.read(key) == b"%PDF-first"
    info = storage.info(key)
    assert (info.key, info.size, info.content_type) == (key, 10, "application/pdf")
    assert info.etag and info.modified.tzinfo is not None
    with storage.open(key) as opened:
        assert opened.info == info
        assert opened.file.read() == b"%PDF-first"
    assert storage.exists(key)
    assert storage.delete(key) is True
    assert storage.delete(key) is False and not storage.exists(key)


@pytest.mark.spec("OPS-5")
def test_files_are_listed_by_prefix_and_stored_from_a_stream(storage):
    storage.put("archives/1/a.zip", io.BytesIO(b"zip a"), "application/zip")
    storage.put("archives/2/b.zip", b"zip b")
    storage.put("invoices/1/INV-1.pdf", b"pdf")
    assert [f.key for f in storage.keys("archives/")] == ["archives/1/a.zip", "archives/2/b.zip"]
    assert sorted(f.key for f in storage.keys()) == [
        "archives/1/a.zip",
        "archives/2/b.zip",
        "invoices/1/INV-1.pdf",
    ]
    assert [f.size for f in storage.keys("archives/1/")] == [5]
    assert storage.read("archives/1/a.zip") == b"zip a"
    assert storage.info("archives/2/b.zip").content_type == "application/zip"  # from the name


@pytest.mark.parametrize(
    "key",
    ["../secret", "/etc/passwd", "a/../b", ".hidden", "a/.b", "a//b", "", "a\\b", "a b", "x" * 401],
)
def test_a_key_is_a_relative_path_of_plain_names(make_app, key):
    storage = make_app().storage
    with pytest.raises(ValueError, match="is not a relative path"):
        storage.put(key, b"x")
    with pytest.raises(ValueError):
        storage.open(key)


@pytest.mark.spec("OPS-5")
def test_of_writers_racing_on_one_key_the_first_wins(storage):
    """Eight threads store different bytes under one key: one put succeeds, and every reader
    sees that one file, whole."""
    key = "invoices/1/INV-race.pdf"
    won, start = [], threading.Barrier(8)

    def writer(n):
        start.wait()
        if storage.put(key, f"%PDF writer {n} ".encode() * 500):
            won.append(n)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    assert storage.read(key) == f"%PDF writer {won[0]} ".encode() * 500


def test_the_local_backend_gives_a_real_file_and_leaves_no_temporary_files(make_app, tmp_path):
    storage = make_app(storage={"path": str(tmp_path / "files")}).storage
    assert isinstance(storage, LocalStorage) and storage.root == tmp_path / "files"
    storage.put("invoices/1/a.pdf", b"pdf")
    storage.put("invoices/1/a.pdf", b"again")
    with storage.open("invoices/1/a.pdf") as opened:
        assert opened.file.fileno() > 0  # what sendfile needs
    assert [p.name for p in (tmp_path / "files" / "invoices" / "1").iterdir()] == ["a.pdf"]


def test_the_default_backend_is_a_folder_in_the_data_dir(make_app):
    app = make_app()
    assert isinstance(app.storage, LocalStorage)
    assert app.storage.root == app.settings.data_path / "files"
    assert isinstance(make_app(storage={"backend": "database"}).storage, DatabaseStorage)


@pytest.mark.spec("OPS-5")
def test_s3_objects_live_under_the_prefix_and_a_signed_url_serves_them(make_app, s3):
    import requests

    storage = make_app(storage=s3.settings(s3_prefix="tenant-a/")).storage
    assert isinstance(storage, S3Storage)
    storage.put("invoices/1/INV-1.pdf", b"%PDF-s3", "application/pdf")
    listed = s3.client().list_objects_v2(Bucket=s3.name)["Contents"]
    assert [o["Key"] for o in listed] == ["tenant-a/invoices/1/INV-1.pdf"]
    url = storage.url("invoices/1/INV-1.pdf", filename="INV-1.pdf")
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 200 and answer.content == b"%PDF-s3"
    assert 'filename="INV-1.pdf"' in answer.headers["content-disposition"]
    assert "portico-test-secret" not in url and "portico-test-secret" not in storage.describe()


@pytest.mark.spec("OPS-5")
def test_copy_moves_every_file_to_another_backend_once(make_app, s3):
    app = make_app(storage={"backend": "database"})
    local = LocalStorage(app.settings.data_path / "old")
    for n in range(3):
        local.put(f"invoices/1/INV-{n}.pdf", f"pdf {n}".encode())
    local.put("archives/1/x.zip", b"zip")
    target = app.storage
    target.put("invoices/1/INV-0.pdf", b"already there")
    assert copy(local, target, "invoices/") == (2, 1)
    assert target.read("invoices/1/INV-0.pdf") == b"already there"  # never replaced
    assert target.read("invoices/1/INV-2.pdf") == b"pdf 2"
    assert not target.exists("archives/1/x.zip")  # outside the prefix
    assert copy(local, target) == (1, 3)


@pytest.mark.spec("OPS-5", "OPS-2")
def test_the_storage_command_copies_from_a_folder_into_the_configured_storage(
    make_app, s3, tmp_path
):
    from engine.cli import cli

    app = make_app(storage=s3.settings())
    old = LocalStorage(tmp_path / "var")
    old.put("invoices/3/INV-000009.pdf", b"%PDF 0.1.0")
    old.put("portico.sqlite3-not-a-key-prefix", b"x")
    env = _env(app, s3)
    result = CliRunner().invoke(
        cli,
        [
            "storage",
            "copy",
            "--from",
            "local",
            "--from-path",
            str(tmp_path / "var"),
            "--prefix",
            "invoices/",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "1 copied, 0 already there" in result.output
    assert app.storage.read("invoices/3/INV-000009.pdf") == b"%PDF 0.1.0"
    assert not app.storage.exists("portico.sqlite3-not-a-key-prefix")
    same = CliRunner().invoke(
        cli,
        [
            "storage",
            "copy",
            "--from",
            "local",
            "--from-path",
            str(tmp_path / "var"),
            "--prefix",
            "invoices/",
        ],
        env=env,
    )
    assert "0 copied, 1 already there" in same.output
    refused = CliRunner().invoke(cli, ["storage", "copy", "--from", "s3"], env=env)
    assert refused.exit_code != 0 and "the same storage" in refused.output


def _env(app, s3) -> dict:
    conf = s3.settings()
    env = {
        **TEST_ENVIRON,
        "PORTICO_DATABASE_URL": app.settings.database_url,
        "PORTICO_DATA_DIR": str(app.settings.data_path),
        "PORTICO_BROKER_URL": app.settings.broker_url,
        "PORTICO_SECRET_KEY": app.settings.secret_key,
        "PORTICO_PLUGINS_ENTRY_POINTS": "false",
    }
    env.update({f"PORTICO_STORAGE_{k.upper()}": str(v) for k, v in conf.items()})
    return env


# -- settings -------------------------------------------------------------------------------


@pytest.mark.spec("OPS-2", "OPS-5")
@pytest.mark.parametrize(
    "storage,error",
    [
        ({"backend": "s3"}, "storage.s3_bucket: required when backend is 's3'"),
        ({"backend": "nfs"}, "storage.backend: Must be one of: local, database, s3."),
        (
            {"backend": "s3", "s3_bucket": "b", "s3_endpoint_url": "ftp://minio"},
            "storage.s3_endpoint_url: Not a valid URL.",
        ),
        ({"s3_addressing_style": "sideways"}, "storage.s3_addressing_style: Must be one of"),
    ],
)
def test_storage_settings_are_validated_naming_the_key(tmp_path, storage, error):
    with pytest.raises(SettingsError, match=error.replace(".", r"\.").replace("(", r"\(")):
        load_settings(
            None,
            environ={},
            overrides={"demo": True, "data_dir": str(tmp_path), "storage": storage},
        )


@pytest.mark.spec("OPS-2", "OPS-5")
def test_portico_check_never_prints_the_s3_keys(tmp_path, monkeypatch):
    from engine.cli import cli

    monkeypatch.chdir(tmp_path)
    env = {
        "PORTICO_DEMO": "true",
        "PORTICO_DATA_DIR": str(tmp_path / "var"),
        "PORTICO_PLUGINS_ENTRY_POINTS": "false",
        "PORTICO_STORAGE_BACKEND": "s3",
        "PORTICO_STORAGE_S3_BUCKET": "invoices",
        "PORTICO_STORAGE_S3_REGION": "eu-west-2",
        "PORTICO_STORAGE_S3_ENDPOINT_URL": "https://minio.internal:9000",
        "PORTICO_STORAGE_S3_ACCESS_KEY_ID": "AKIAPORTICOKEYID",
        "PORTICO_STORAGE_S3_SECRET_ACCESS_KEY": "s3cr3t/PorticoSecretAccessKey",
    }
    result = CliRunner().invoke(cli, ["check"], env=env)
    assert result.exit_code == 0, result.output
    assert '"s3_bucket": "invoices"' in result.output
    assert '"s3_endpoint_url": "https://minio.internal:9000"' in result.output
    assert "AKIAPORTICOKEYID" not in result.output
    assert "PorticoSecretAccessKey" not in result.output
    assert result.output.count('"********"') >= 2
