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
