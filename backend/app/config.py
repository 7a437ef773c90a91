"""Typed settings of the API, read once from the environment (documented in .env.example)."""

from __future__ import annotations

import socket
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Passwords shipped in .env.example: fine on a laptop, refused anywhere else.
DEVELOPMENT_PASSWORDS = frozenset({"dev-app-password", "dev-root-password", "dev-repl-password"})


class Settings(BaseSettings):
    """Everything the API reads from its environment."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    app_env: Literal["development", "test", "production"] = "development"
    # Shown in X-Served-By; in compose, where replicas share one environment, the container name.
    api_name: str = Field(default_factory=socket.gethostname)
    log_level: str = "INFO"

    # host:port of the primary, and of each replica in order (replica-1, replica-2, ...).
    db_primary: str
    db_replicas: Annotated[tuple[str, ...], NoDecode] = ()
    mysql_database: str
    mysql_app_user: str
    mysql_app_password: SecretStr
    db_pool_size: int = Field(4, ge=1)
    db_max_overflow: int = Field(4, ge=0)
    db_connect_timeout: int = Field(2, ge=1)
    db_read_timeout: int = Field(10, ge=1)

    redis_url: str = "redis://127.0.0.1:6380/0"
    redis_socket_timeout: float = Field(0.2, gt=0)

    api_max_body_bytes: int = Field(65536, ge=1024)

    @field_validator("db_replicas", mode="before")
    @classmethod
    def split_addresses(cls, value: object) -> object:
        """DB_REPLICAS is a comma-separated list; empty means no replica."""
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @model_validator(mode="after")
    def refuse_development_passwords(self) -> Settings:
        """Outside development, the example passwords are a misconfiguration, not a default."""
        password = self.mysql_app_password.get_secret_value()
        if self.app_env == "production" and password in DEVELOPMENT_PASSWORDS:
            raise ValueError("MYSQL_APP_PASSWORD is a development password; set a real one")
        return self

    def replica_names(self) -> list[str]:
        """replica-1, replica-2, ... in the order of DB_REPLICAS."""
        return [f"replica-{i + 1}" for i in range(len(self.db_replicas))]
