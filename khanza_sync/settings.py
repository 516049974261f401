"""The one place that reads the environment (and `.env`).

Every knob of the pipeline is a field here; the README's settings table mirrors this class. Entry points
(flows, the CLI) call `load_settings()` once and hand the object on; domain code and tasks receive it and
never read the environment themselves. Tests build `Settings(...)` directly.
"""
from __future__ import annotations

import re
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HOSPITAL_CODE_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,14}[a-z0-9])?")  # 1-16 chars, no dash at either end


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Khanza (names as the hospital already knows them)
    khanza_db_host: str = "127.0.0.1"
    khanza_db_port: int = 3306
    khanza_db_name: str = "sik"
    khanza_db_user: str = "root"
    khanza_db_password: SecretStr = SecretStr("")

    # Website registration store: any SQLAlchemy URL; the embedded default is a SQLite file.
    website_db_url: SecretStr = SecretStr(f"sqlite:///{PROJECT_ROOT / 'data' / 'website.db'}")

    mappings_dir: Path = PROJECT_ROOT / "mappings"
    hospital_timezone: str = "Asia/Jakarta"
    # Short code of the hospital on a shared Prefect server: names its work pool, deployments and write limit.
    hospital_code: str = "default"

    # Khanza numbering and target, mirroring setting/database.xml
    khanza_urutnoreg: str = "dokter"  # dokter | poli | dokter + poli
    khanza_basenoreg: str = ""  # "booking" = online and walk-in share one no_reg sequence
    khanza_target: str = "reg_periksa"  # reg_periksa | booking

    # Booking window (HARIDAFTAR / LIMITJAM in Khanza terms)
    booking_max_days_ahead: int = 30
    booking_same_day_cutoff_hour: int | None = 12
    # How far a registration's created_at (UTC) may lie ahead of the pipeline's clock (clocks drift) before the
    # website's clock or time zone counts as wrong: such rows wait (CREATED_AT_IN_FUTURE), the run says by how much.
    created_at_max_skew_seconds: int = Field(300, ge=0)

    # Batching and retry behaviour
    batch_size: int = Field(1000, ge=1)
    khanza_retries: int = Field(3, ge=0)
    khanza_retry_delay_seconds: float = Field(10.0, ge=0)
    khanza_connect_timeout: int = Field(10, ge=1)
    khanza_read_timeout: int = Field(30, ge=1)
    khanza_write_timeout: int = Field(30, ge=1)
    khanza_lock_timeout_seconds: int = Field(20, ge=1)  # below the read timeout (checked: _possible)
    khanza_concurrency_limit: str = ""  # Prefect global concurrency limit name; empty = khanza-writes-<code>
    # The write slot's Prefect lease, renewed every 3/4 of it (tasks/limits.py); Prefect accepts 60 s to a day
    khanza_slot_lease_seconds: int = Field(300, ge=60, le=86400)
    claim_lease_seconds: int = Field(600, ge=10)
    max_transient_attempts: int = Field(50, ge=1)
    deferral_max_seconds: int = Field(3600, ge=1)
    # Follow mode (`khanza-sync follow`): poll interval where no LISTEN/NOTIFY trigger wakes it (SQLite, old DDL)
    follow_poll_seconds: float = Field(1.0, gt=0, le=60)
    # The scheduled sync's cadence in opening hours (`khanza-sync deploy`): a backstop beside follow mode, which
    # deploy always deploys; 2 where follow-registrations is paused (README "Running it in production").
    sync_every_minutes: int = Field(15, ge=1, le=30)

    # No run hangs: Prefect timeouts (the backstop) and the website driver's own timeouts (README "Settings").
    # A healthy 10,000 backlog takes about 30 s on the benchmark machine, a 1,000-row batch about 3 s.
    flow_timeout_seconds: float = Field(3600, gt=0)  # a whole flow run
    task_timeout_seconds: float = Field(900, gt=0)  # one task = one stage of one batch (BATCH_SIZE rows)
    website_connect_timeout: int = Field(10, ge=1)  # PostgreSQL connect_timeout
    # PostgreSQL statement_timeout (and a client-side bound for a stalled network); SQLite busy timeout
    website_statement_timeout_seconds: float = Field(30, gt=0)

    # Alerts (`khanza-sync alerts`, khanza_sync/alerts.py): Prefect automations sending to these Apprise URLs.
    # Secret: the URLs carry tokens. Empty = no alerts installed. Minutes may be fractional (tests use seconds);
    # Prefect's proactive triggers need at least 10 s.
    alert_urls: SecretStr = SecretStr("")
    alert_offline_minutes: float = Field(30, ge=1 / 6)
    alert_no_sync_minutes: float = Field(20, ge=1 / 6)
    alert_rejections_per_hour: int = Field(20, ge=1)
    # A deployment that keeps failing alerts once per this many minutes (and once when a run succeeds again)
    alert_repeat_minutes: float = Field(30, ge=1 / 6)

    @field_validator("booking_same_day_cutoff_hour", mode="before")
    @classmethod
    def _empty_is_none(cls, value):
        """An empty BOOKING_SAME_DAY_CUTOFF_HOUR (or 'none') means same-day registration all day."""
        return None if isinstance(value, str) and value.strip().lower() in {"", "none"} else value

    @field_validator("hospital_timezone")
    @classmethod
    def _valid_tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (KeyError, ValueError) as error:
            raise ValueError(f"HOSPITAL_TIMEZONE {value!r} is not a known time zone") from error
        return value

    @field_validator("hospital_code")
    @classmethod
    def _valid_code(cls, value: str) -> str:
        if not HOSPITAL_CODE_PATTERN.fullmatch(value):
            raise ValueError(f"HOSPITAL_CODE {value!r}: 1-16 lowercase letters, digits or dashes (not at either end)")
        return value

    @model_validator(mode="after")
    def _possible(self) -> "Settings":
        """Combinations that cannot work are refused with the setting to change (khanza-sync check shows it)."""
        if self.khanza_lock_timeout_seconds >= self.khanza_read_timeout:
            raise ValueError(
                f"KHANZA_LOCK_TIMEOUT_SECONDS={self.khanza_lock_timeout_seconds} must be below KHANZA_READ_TIMEOUT="
                f"{self.khanza_read_timeout}: a wait for the numbering lock would otherwise look like Khanza stalled "
                "(a false 'Khanza offline'); lower the lock timeout or raise the read timeout")
        if self.task_timeout_seconds > self.flow_timeout_seconds:
            raise ValueError(f"TASK_TIMEOUT_SECONDS={self.task_timeout_seconds:g} must not exceed FLOW_TIMEOUT_SECONDS="
                             f"{self.flow_timeout_seconds:g}: the flow would time out before its task does")
        return self

    @model_validator(mode="after")
    def _limit_per_hospital(self) -> "Settings":
        """Each hospital's Khanza writes take their own limit unless KHANZA_CONCURRENCY_LIMIT names one."""
        if not self.khanza_concurrency_limit.strip():
            self.khanza_concurrency_limit = f"khanza-writes-{self.hospital_code}"
        return self

    @property
    def work_pool_name(self) -> str:
        """The hospital's own Prefect work pool: only its deployments, only its workers."""
        return f"khanza-sync-{self.hospital_code}"

    @field_validator("khanza_target")
    @classmethod
    def _valid_target(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in {"reg_periksa", "booking"}:
            raise ValueError("KHANZA_TARGET must be 'reg_periksa' or 'booking'")
        return value

    @property
    def alert_url_list(self) -> list[str]:
        """ALERT_URLS split on commas and whitespace (Apprise's own separators)."""
        return [u for u in re.split(r"[\s,]+", self.alert_urls.get_secret_value()) if u]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.hospital_timezone)

    @property
    def noreg_scope(self) -> str:
        """URUTNOREG as DlgReg's isNumber compares it: exactly `dokter`, `poli` or `dokter + poli` (koneksiDB
        returns the database.xml value as written). Anything else takes DlgReg's fallback: doctor, or clinic
        when BASENOREG=booking. Scope keys: dokter | poli | dokter+poli."""
        scope = {"dokter": "dokter", "poli": "poli", "dokter + poli": "dokter+poli"}.get(self.khanza_urutnoreg)
        if scope:
            return scope
        return "poli" if self.noreg_shared_with_booking else "dokter"

    @property
    def noreg_shared_with_booking(self) -> bool:
        return self.khanza_basenoreg == "booking"  # DlgReg: BASENOREG.equals("booking")

    def khanza_url(self, database: str | None = None) -> URL:
        return URL.create(
            "mysql+pymysql",
            username=self.khanza_db_user,
            password=self.khanza_db_password.get_secret_value() or None,
            host=self.khanza_db_host,
            port=self.khanza_db_port,
            database=database or self.khanza_db_name,
            query={"charset": "utf8mb4"},
        )


def load_settings() -> Settings:
    """Settings from the environment and `.env`, read now (a flow run reads them once, at its start)."""
    return Settings()
