"""Settings of the threshold guard, read from the environment."""

from provisioning_common.settings import KafkaSettings
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class GuardSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PROVISIONING_", env_nested_delimiter="__", extra="ignore"
    )

    kafka: KafkaSettings = Field(
        default_factory=KafkaSettings, description="Kafka connection (KAFKA_* variables)."
    )
    log_level: str = Field(default="INFO", description="Level of the service's JSON logs.")
