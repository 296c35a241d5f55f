"""One configuration object, read from TOML, passed down; no globals.

`WOXQAQ_CONFIG` names the file (default ./woxqaq.toml). `${ENV_VAR}` anywhere in a string
value is replaced by that environment variable, so secrets stay out of the file. Every key
has a default: an empty or missing file starts the embedded setup (SQLite task store in
`server.data_dir`, local file store, the demo datasource).
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import make_url

from service.listen import parse_listen

DEMO_DATASOURCE = "demo"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(Exception):
    """Bad configuration: one line that names the key and what to fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsConfig(_Section):
    cert_file: Path
    key_file: Path
    # Mutual TLS: every client presents a certificate signed by this CA; its common name is
    # its principal's name.
    client_ca_file: Path | None = None

    def files(self) -> dict[str, Path]:
        """The files by their config key, to check where the service starts."""
        named = {"cert_file": self.cert_file, "key_file": self.key_file}
        return named | ({"client_ca_file": self.client_ca_file} if self.client_ca_file else {})


class ServerConfig(_Section):
    listen: str = "127.0.0.1:50051"
    # Bearer token of one principal ("server.token") that may act for every user.
    token: str = Field(default="", repr=False)
    # Listening beyond loopback with no way to authenticate callers is refused unless set.
    allow_unauthenticated: bool = False
    tls: TlsConfig | None = None
    data_dir: Path = Path(".woxqaq")
    # Accept a raw SQLAlchemy URL in SubmitTaskRequest.dsn instead of a registry name.
    allow_raw_dsn: bool = False
    max_message_bytes: Annotated[int, Field(ge=64 * 1024, le=64 * 1024 * 1024)] = 4 * 1024 * 1024
    # Seconds in-flight calls get to finish on SIGTERM/SIGINT.
    shutdown_grace_s: Annotated[float, Field(ge=0, le=600)] = 30.0
    # Restrict who sees which datasource's tasks: False lets every user list every task.
    restrict_visibility: bool = False


class TaskStoreConfig(_Section):
    # SQLAlchemy URL; empty: SQLite in server.data_dir.
    url: str = ""

    @field_validator("url")
    @classmethod
    def _url_parses(cls, v: str) -> str:
        if v:
            make_url(v)
        return v


class ExportConfig(_Section):
    workers: Annotated[int, Field(ge=1, le=64)] = 2
    statement_timeout_s: Annotated[int, Field(ge=1, le=86400)] = 300
    fetch_size: Annotated[int, Field(ge=100, le=1_000_000)] = 10_000
    csv_bom: bool = False
    # Prefix text cells starting with = + - @ with ' so a spreadsheet shows, not runs, them.
    csv_escape_formulas: bool = False
    work_dir: Path | None = None  # where files are written before upload; default data_dir/work
    # A run whose process stopped heartbeating this long ago is failed (its process died).
    stale_run_s: Annotated[float, Field(ge=1, le=86400)] = 60


class LocalStoreConfig(_Section):
    dir: Path | None = None  # default data_dir/files
    http_listen: str = "127.0.0.1:8780"
    # The base URL users reach the download endpoint at (behind a proxy, say).
    public_url: str = ""
    # HMAC key for download links; empty: generated once and kept in data_dir.
    signing_key: str = ""


class S3Config(_Section):
    bucket: str = ""
    prefix: str = "woxqaq/"
    region: str = ""
    endpoint_url: str = ""


class StorageConfig(_Section):
    backend: Literal["local", "s3"] = "local"
    # S3 presigned links live at most 7 days; the local store keeps to the same bound.
    link_ttl_s: Annotated[int, Field(ge=60, le=7 * 24 * 3600)] = 24 * 3600
    link_ttl_max_s: Annotated[int, Field(ge=60, le=7 * 24 * 3600)] = 7 * 24 * 3600
    retention_days: Annotated[float, Field(gt=0)] = 7
    local: LocalStoreConfig = LocalStoreConfig()
    s3: S3Config = S3Config()


class SchedulerConfig(_Section):
    enabled: bool = True
    # A firing missed while the service was down still runs on start within this grace
    # (several missed ones run once); older ones are recorded as missed. At least 60 s.
    misfire_grace_s: Annotated[int, Field(ge=0)] = 3600
    # How often the task store is read for due firings: the most a run starts late.
    tick_s: Annotated[float, Field(gt=0, le=60)] = 1.0


class MetricsConfig(_Section):
    # Where /metrics is served: `host:port`, or a port alone for loopback; empty: off.
    listen: str = ""

    @field_validator("listen")
    @classmethod
    def _listen_parses(cls, v: str) -> str:
        if v.strip():
            parse_listen(v)  # ListenError is a ValueError: reported with the key
        return v.strip()


class LogConfig(_Section):
    # "text": one readable line a record; "json": one JSON object a line, for log shippers.
    format: Literal["text", "json"] = "text"


class DatasourceConfig(_Section):
    url: str
    # Set apart from the URL so that any characters work without percent-encoding.
    password: str = ""
    approvers: tuple[str, ...] = ()
    approval_channel: str = ""
    required_approvals: Annotated[int, Field(ge=1, le=20)] = 1
    statement_timeout_s: Annotated[int, Field(ge=1, le=86400)] | None = None
    # Who may see this datasource's tasks when server.restrict_visibility is on.
    viewers: tuple[str, ...] = ()
    description: str = ""
    # Imports and generations write with these credentials only, never with `url`'s; empty:
    # this datasource takes no writes.
    write_url: str = ""
    write_password: str = ""
    # Globs of the tables writes may go to: "promo_codes", "staging.*" (schema.table).
    writable_tables: tuple[str, ...] = ()
    # Test-data generation writes made-up rows: for test databases only.
    allow_generate: bool = False
    # Functions beyond the built-in ones that exports may call, by name or schema.name.
    allowed_functions: tuple[str, ...] = ()
    # A reader that may write or is a superuser fails every pre-check unless this is set.
    allow_privileged_reader: bool = False
    # IANA name: what a one-off export's times and placeholders mean (a schedule has its own).
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _timezone_exists(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ValueError, ZoneInfoNotFoundError):
            raise ValueError(
                "is not an IANA timezone name (like Asia/Shanghai or America/New_York)"
            ) from None
        return v

    @field_validator("url", "write_url")
    @classmethod
    def _url_parses(cls, v: str, info: ValidationInfo) -> str:
        if not v and info.field_name == "write_url":
            return v
        try:
            make_url(v)
        except Exception as exc:  # the URL may hold a password: never echo it
            raise ValueError(
                "is not a SQLAlchemy URL (dialect+driver://user@host/db); percent-encode "
                "special characters or put the password in the datasource's `password` key"
            ) from exc
        return v


class ImportConfig(_Section):
    # The largest file an import reads, and the most rows it writes.
    max_bytes: Annotated[int, Field(ge=1)] = 1024**3
    max_rows: Annotated[int, Field(ge=1)] = 10_000_000
    # An XLSX file is a zip: what its sheet may unpack to (a zip bomb stops here).
    max_unpacked_bytes: Annotated[int, Field(ge=1)] = 4 * 1024**3


class GenerateConfig(_Section):
    # The most rows one generation task may write.
    max_rows: Annotated[int, Field(ge=1)] = 1_000_000


class PrincipalConfig(_Section):
    """Who a token (or a client certificate's common name) is, and for whom it may act."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    token: str = Field(default="", repr=False)
    token_sha256: str = Field(default="", repr=False)
    # Users this principal may name in x-woxqaq-user; ["*"]: any (a client that verified
    # its users itself, such as the Slack bot).
    acts_for: tuple[str, ...] = ()

    @field_validator("token_sha256")
    @classmethod
    def _hex_digest(cls, v: str) -> str:
        if v and not re.fullmatch(r"[0-9a-fA-F]{64}", v):
            raise ValueError("is not a SHA-256 hex digest (64 hex digits): sha256sum of the token")
        return v.lower()


JwtAlgorithm = Literal[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"
]


class JwtConfig(_Section):
    """Tokens of the company's identity provider, checked against its published keys."""

    issuer: Annotated[str, Field(min_length=1)]
    audience: Annotated[str, Field(min_length=1)]
    jwks_url: Annotated[str, Field(pattern=r"^https?://")]
    user_claim: str = "sub"
    # Public-key algorithms only: `none` and shared-secret HS* are never accepted.
    algorithms: Annotated[tuple[JwtAlgorithm, ...], Field(min_length=1)] = ("RS256", "ES256")
    leeway_s: Annotated[int, Field(ge=0, le=300)] = 30
    # How long fetched keys are kept; an unknown key id refetches them at most once per
    # jwks_refresh_cooldown_s (key rotation without a restart, no fetch storm).
    jwks_cache_s: Annotated[int, Field(ge=1, le=86400)] = 300
    jwks_refresh_cooldown_s: Annotated[float, Field(ge=0, le=3600)] = 30


class AuthConfig(_Section):
    principals: tuple[PrincipalConfig, ...] = ()
    jwt: JwtConfig | None = None

    @field_validator("principals")
    @classmethod
    def _unique_names(cls, v: tuple[PrincipalConfig, ...]) -> tuple[PrincipalConfig, ...]:
        names = [p.name for p in v]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"principal {name!r} is configured twice")
        for p in v:
            if p.token and p.token_sha256:
                raise ValueError(f"principal {p.name!r}: give token or token_sha256, not both")
        return v


class DemoConfig(_Section):
    approvers: tuple[str, ...] = ("approver",)
    approval_channel: str = ""


class Config(_Section):
    model_config = ConfigDict(extra="forbid", frozen=True, serialize_by_alias=True)

    server: ServerConfig = ServerConfig()
    auth: AuthConfig = AuthConfig()
    task_store: TaskStoreConfig = TaskStoreConfig()
    export: ExportConfig = ExportConfig()
    storage: StorageConfig = StorageConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    metrics: MetricsConfig = MetricsConfig()
    log: LogConfig = LogConfig()
    # `import` is a Python keyword: the TOML key reads and dumps under that name.
    imports: ImportConfig = Field(
        default=ImportConfig(), validation_alias="import", serialization_alias="import"
    )
    generate: GenerateConfig = GenerateConfig()
    demo: DemoConfig = DemoConfig()
    datasources: dict[str, DatasourceConfig] = {}

    @model_validator(mode="after")
    def _principals_can_authenticate(self) -> Config:
        mutual_tls = self.server.tls is not None and self.server.tls.client_ca_file is not None
        for p in self.auth.principals:
            if not (p.token or p.token_sha256 or mutual_tls):
                raise ValueError(
                    f"auth.principals: {p.name!r} has no token or token_sha256 (without "
                    "server.tls.client_ca_file it can only be a certificate's name)"
                )
        return self

    @property
    def authenticates(self) -> bool:
        """Some way to prove who calls is configured."""
        return bool(
            self.server.token
            or self.auth.principals
            or self.auth.jwt
            or (self.server.tls and self.server.tls.client_ca_file)
        )

    @property
    def embedded(self) -> bool:
        """No datasource configured: the demo one is served."""
        return not self.datasources

    @property
    def task_store_url(self) -> str:
        return self.task_store.url or f"sqlite:///{self.server.data_dir.resolve() / 'tasks.db'}"

    @property
    def work_dir(self) -> Path:
        return self.export.work_dir or self.server.data_dir / "work"

    @property
    def local_store_dir(self) -> Path:
        return self.storage.local.dir or self.server.data_dir / "files"

    @property
    def demo_database_path(self) -> Path:
        return self.server.data_dir / "demo.db"


def is_loopback(listen: str) -> bool:
    """Whether `host:port` (or `[v6]:port`) listens on this machine only."""
    host = listen.rpartition(":")[0].strip("[]") if ":" in listen else listen
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name, or empty (every interface): assume it is reachable


def _interpolate(value: Any, where: str) -> Any:
    if isinstance(value, str):

        def replace(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in os.environ:
                raise ConfigError(f"{where}: environment variable {name} is not set")
            return os.environ[name]

        return _ENV_REF.sub(replace, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, f"{where}.{k}" if where else k) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def parse_config(data: dict[str, Any]) -> Config:
    """Validate a config mapping; raises ConfigError with one line naming the first bad key."""
    data = _interpolate(data, "")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key; check its spelling against the configuration reference"
        raise ConfigError(f"config key {key}: {msg}") from None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read the file named by `path`, else $WOXQAQ_CONFIG, else ./woxqaq.toml (absent: defaults)."""
    explicit = path is not None or "WOXQAQ_CONFIG" in os.environ
    file = Path(path if path is not None else os.environ.get("WOXQAQ_CONFIG", "woxqaq.toml"))
    if not file.exists():
        if explicit:
            raise ConfigError(f"config file {file} does not exist")
        return Config()
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {file} cannot be read: {exc}") from None
    return parse_config(data)
