"""Configuration: defaults, ${ENV} interpolation, and one clear line for every mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import ConfigError, load_config, parse_config
from service.datasources import DatasourceRegistry
from service.domain.errors import InvalidRequest


def test_empty_config_is_the_embedded_setup(tmp_path: Path) -> None:
    cfg = parse_config({"server": {"data_dir": str(tmp_path)}})
    assert cfg.embedded
    assert cfg.task_store_url == f"sqlite:///{tmp_path.resolve() / 'tasks.db'}"
    assert cfg.server.listen == "127.0.0.1:50051"
    assert cfg.storage.backend == "local"
    registry = DatasourceRegistry(cfg)
    assert registry.names() == ["demo"]
    assert registry.get("demo").approvers == frozenset({"approver"})


def test_missing_default_file_gives_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WOXQAQ_CONFIG", raising=False)
    assert load_config().embedded


def test_env_interpolation_fills_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_DB_PASSWORD", "p@ss:w/rd")
    file = tmp_path / "woxqaq.toml"
    file.write_text(
        '[datasources.shop]\nurl = "postgresql+psycopg://reader@db.internal/shop"\npassword = "${SHOP_DB_PASSWORD}"\n'
        'approvers = ["U1", "U2"]\napproval_channel = "C1"\nrequired_approvals = 2\n',
        encoding="utf-8",
    )
    cfg = load_config(file)
    assert cfg.datasources["shop"].password == "p@ss:w/rd"
    ds = DatasourceRegistry(cfg).get("shop")
    assert ds.url.password == "p@ss:w/rd"
    assert ds.required_approvals == 2
    assert "p@ss" not in ds.safe_url and "p@ss" not in repr(ds)


@pytest.mark.parametrize(
    ("toml", "words"),
    [
        ("[server]\nlisten = 5\n", "config key server.listen"),
        ('[server]\nlisen = "x"\n', "config key server.lisen: unknown key"),
        ("[export]\nworkers = 0\n", "config key export.workers"),
        ('[datasources.shop]\napprovers = ["U1"]\n', "config key datasources.shop.url"),
        (
            '[datasources.shop]\nurl = "not a url"\n',
            "datasources.shop.url: is not a SQLAlchemy URL",
        ),
        (
            '[datasources.shop]\nurl = "postgresql://u:${NOT_SET_ANYWHERE}@h/db"\n',
            "datasources.shop.url: environment variable NOT_SET_ANYWHERE is not set",
        ),
        ('[storage]\nbackend = "ftp"\n', "config key storage.backend"),
        ("this is = not toml [", "is not valid TOML"),
    ],
)
def test_bad_config_is_one_line_naming_the_key(tmp_path: Path, toml: str, words: str) -> None:
    file = tmp_path / "woxqaq.toml"
    file.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(file)
    message = str(info.value)
    assert words in message
    assert "\n" not in message


def test_bad_config_message_never_shows_a_password(tmp_path: Path) -> None:
    file = tmp_path / "woxqaq.toml"
    file.write_text(
        '[datasources.shop]\nurl = "postgresql://u:hunter2@h/db"\nrequired_approvals = 0\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(file)
    assert "hunter2" not in str(info.value)


def test_named_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_example_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "WOXQAQ_SERVICE_TOKEN",
        "WOXQAQ_DB_PASSWORD",
        "SHOP_DB_PASSWORD",
        "BILLING_DB_PASSWORD",
        "SHOP_IMPORTER_PASSWORD",
    ):
        monkeypatch.setenv(var, "x")
    cfg = load_config(Path(__file__).resolve().parents[2] / "examples" / "woxqaq.toml")
    assert set(cfg.datasources) == {"shop", "billing"}
    assert cfg.datasources["billing"].required_approvals == 2
    assert cfg.datasources["shop"].writable_tables == ("promo_codes", "staging.*")


def test_import_keys_are_checked_and_named() -> None:
    with pytest.raises(ConfigError, match=r"datasources\.shop\.write_url") as err:
        parse_config({"datasources": {"shop": {"url": "sqlite://", "write_url": "pg:/s3cret@"}}})
    assert "s3cret" not in str(err.value)
    with pytest.raises(ConfigError, match=r"import\.max_bytes"):
        parse_config({"import": {"max_bytes": 0}})
    cfg = parse_config({"import": {"max_rows": 5}})
    assert cfg.imports.max_rows == 5 and cfg.imports.max_bytes == 1024**3
    assert parse_config(cfg.model_dump(mode="json")).imports == cfg.imports


def test_metrics_and_log_format_keys() -> None:
    cfg = parse_config({"metrics": {"listen": " 9464 "}, "log": {"format": "json"}})
    assert cfg.metrics.listen == "9464" and cfg.log.format == "json"
    assert parse_config({}).metrics.listen == "" and parse_config({}).log.format == "text"
    with pytest.raises(ConfigError, match=r"^config key log\.format: "):
        parse_config({"log": {"format": "xml"}})


@pytest.mark.parametrize(
    ("written", "used"),
    [
        ("postgresql://reader@db.internal/shop", "postgresql+psycopg://reader@db.internal/shop"),
        ("postgresql+psycopg://reader@db/shop", "postgresql+psycopg://reader@db/shop"),
        ("mysql://reader@db.internal/shop", "mysql+pymysql://reader@db.internal/shop"),
        ("mariadb://reader@db.internal/shop", "mariadb+pymysql://reader@db.internal/shop"),
        ("sqlite:///demo.db", "sqlite+pysqlite:///demo.db"),
    ],
)
def test_a_datasource_url_without_a_driver_gets_the_one_the_service_is_built_on(
    written: str, used: str
) -> None:
    cfg = parse_config({"datasources": {"shop": {"url": written, "write_url": written}}})
    ds = DatasourceRegistry(cfg).get("shop")
    assert ds.url.render_as_string() == used
    assert ds.write_url is not None and ds.write_url.render_as_string() == used


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("postgresql+psycopg2://r@db/shop", "'psycopg2' driver is not supported for postgresql"),
        ("mysql+mysqldb://r@db/shop", "'mysqldb' driver is not supported for mysql"),
        ("oracle://r@db/shop", "'oracle' dialect is not supported"),
    ],
)
def test_a_datasource_url_with_another_driver_is_refused_naming_the_one_to_write(
    url: str, words: str
) -> None:
    cfg = parse_config({"datasources": {"shop": {"url": url}}})
    with pytest.raises(ConfigError, match=f"config key datasources.shop.url: the {words}"):
        DatasourceRegistry(cfg)


def test_a_raw_dsn_without_a_driver_gets_it_and_one_with_another_is_refused() -> None:
    registry = DatasourceRegistry(parse_config({"server": {"allow_raw_dsn": True}}))
    url = registry.resolve("postgresql://r@db/shop").url
    assert url.render_as_string() == "postgresql+psycopg://r@db/shop"
    with pytest.raises(InvalidRequest, match="dsn: the 'psycopg2' driver is not supported"):
        registry.resolve("postgresql+psycopg2://r@db/shop")
