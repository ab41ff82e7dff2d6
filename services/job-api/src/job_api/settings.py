"""Settings of every job-api process (HTTP API, console, intake, projector)."""

from pathlib import Path

from provisioning_common.settings import KafkaSettings, MongoSettings
from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class JobApiSettings(BaseSettings):
    """PROVISIONING_* variables and JOB_API_HOST/PORT; KAFKA_*/MONGO_* via the nested settings."""

    model_config = SettingsConfigDict(
        env_prefix="PROVISIONING_",
        env_nested_delimiter="__",
        extra="ignore",
        populate_by_name=True,
    )

    kafka: KafkaSettings = Field(
        default_factory=KafkaSettings, description="Kafka cluster (KAFKA_* variables)."
    )
    mongo: MongoSettings = Field(
        default_factory=MongoSettings,
        description="MongoDB of the system's own collections (MONGO_* variables).",
    )
    admin_api_key: SecretStr | None = Field(
        default=None,
        description="Bootstrap admin API key (PROVISIONING_ADMIN_API_KEY); unset: no admin key.",
    )
    host: str = Field(
        default="127.0.0.1",
        validation_alias=AliasChoices("JOB_API_HOST", "host"),
        description="Interface the HTTP API listens on (JOB_API_HOST).",
    )
    port: int = Field(
        default=8000,
        ge=0,
        le=65535,
        validation_alias=AliasChoices("JOB_API_PORT", "port"),
        description="TCP port of the HTTP API (JOB_API_PORT).",
    )
    data_dir: Path = Field(
        default=Path("./data"),
        description="Folder that file sources are read from (PROVISIONING_DATA_DIR).",
    )
    target_db: str = Field(
        default="identity",
        description="Database of the target repositories (PROVISIONING_TARGET_DB).",
    )
    log_level: str = Field(
        default="INFO", description="Level of the service's logs (PROVISIONING_LOG_LEVEL)."
    )
    max_request_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest HTTP request body or Kafka job request accepted, in bytes.",
    )
    submit_deadline_seconds: float = Field(
        default=4.0,
        gt=0,
        description="Longest a POST /api/v1/jobs waits on the broker and the database before "
        "it answers 503 (PROVISIONING_SUBMIT_DEADLINE_SECONDS); sending the same request_id "
        "again is safe.",
    )
    session_ttl_hours: int = Field(
        default=12, ge=1, description="How long a console session stays valid, in hours."
    )
    cookie_secure: bool = Field(
        default=False,
        description="Send the console's session cookie only over HTTPS (set it behind TLS).",
    )
    rebuild: bool = Field(
        default=False,
        description="Projector only (PROVISIONING_REBUILD): drop job_instances and fold "
        "provisioning.job-events again from the earliest offset with a fresh consumer group.",
    )
    # ---- notifier (job_api.entrypoints.notifier) and scheduler ----
    console_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Address of the console as operators reach it; emails link to jobs there.",
    )
    smtp_host: str | None = Field(
        default=None, description="SMTP server that emails are sent through; unset: no emails."
    )
    smtp_port: int = Field(default=25, ge=1, le=65535, description="Port of the SMTP server.")
    smtp_from: str = Field(
        default="provisioning@localhost", description="Sender address of the emails."
    )
    webhook_secrets: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="PROVISIONING_WEBHOOK_SECRETS: JSON object, recipient name -> the secret its "
        "webhook bodies are signed with (HMAC-SHA256). Never stored in a definition.",
    )
    notify_attempts: int = Field(
        default=5, ge=1, le=20, description="Tries of one webhook or email before giving up."
    )
    notify_first_delay_seconds: float = Field(
        default=1.0, gt=0, description="Pause after the first failed try; doubles each time."
    )
    notify_max_age_hours: float = Field(
        default=24.0,
        gt=0,
        description="Stops older than this are not told (a notifier catching up on history).",
    )
    schedule_tick_seconds: float = Field(
        default=15.0, gt=0, description="How often the scheduler looks for due firings."
    )
    retention_archive_after_days: int = Field(
        default=30,
        ge=1,
        description="Finished jobs are archived this many days after they ended, unless their "
        "definition's retention says otherwise.",
    )
    retention_delete_after_days: int = Field(
        default=90,
        ge=1,
        description="Archived jobs and their plans are deleted this many days after archiving, "
        "unless their definition's retention says otherwise.",
    )
    retention_every_minutes: float = Field(
        default=60.0, gt=0, description="How often the scheduler applies the retention."
    )
