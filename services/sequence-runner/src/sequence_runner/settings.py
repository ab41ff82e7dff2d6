"""Settings of the sequence runner, read from the environment."""

from pathlib import Path

from provisioning_common.settings import KafkaSettings, MongoSettings
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RunnerSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PROVISIONING_", env_nested_delimiter="__", extra="ignore"
    )

    kafka: KafkaSettings = Field(
        default_factory=KafkaSettings, description="Kafka connection (KAFKA_* variables)."
    )
    mongo: MongoSettings = Field(
        default_factory=MongoSettings,
        description="MongoDB connection and the database of runs and plans (MONGO_* variables).",
    )
    target_db: str = Field(
        default="identity",
        min_length=1,
        description="Database of the target repository the mongo target connector writes.",
    )
    data_dir: Path = Field(
        default=Path("./data"),
        description="Folder that csv and jsonl source paths are relative to; nothing outside "
        "it is read.",
    )
    connections_file: Path | None = Field(
        default=None,
        description="JSON file of the named connections (URL, bind DN, password) that "
        "definitions refer to; values may reference the environment, e.g. "
        "${LDAP_ADMIN_PASSWORD}. See docs/connectors.md.",
    )
    log_level: str = Field(default="INFO", description="Level of the service's JSON logs.")
    progress_interval_seconds: float = Field(
        default=1.0, gt=0, description="At most one SequenceProgress per sequence this often."
    )
    apply_batch_size: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="Changes written per bulk write (a SQL target's transaction); unset, each "
        "target's own: 500 for SCIM (requests sent at once), 2,000 for the others.",
    )
    max_parallel_jobs: int = Field(
        default=2, ge=1, description="Jobs one runner process plans or applies at the same time."
    )
    target_retry_attempts: int = Field(
        default=4, ge=1, description="Tries of a target operation that fails on the network."
    )
    target_retry_backoff_seconds: float = Field(
        default=0.5, ge=0, description="Pause before the first retry; doubled at each retry."
    )
