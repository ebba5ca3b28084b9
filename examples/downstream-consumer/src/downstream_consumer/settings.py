"""Configuration from the environment, the same variable names the platform's own services use."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field

from faststream.security import BaseSecurity, SASLScram256, SASLScram512

from unified_shared.topics import ORDERS


@dataclass(frozen=True)
class Settings:
    bootstrap_servers: str = "127.0.0.1:9092"
    group_id: str = "downstream-sales-ledger"
    topics: tuple[str, ...] = (ORDERS,)
    dlq_topic: str = "downstream-sales-ledger.dlq"
    database_url: str = "postgresql://postgres@127.0.0.1:55432/downstream"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    ssl_cafile: str | None = None
    max_attempts: int = 5

    @classmethod
    def from_env(cls) -> Settings:
        env, default = os.environ, cls()
        return cls(
            bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS", default.bootstrap_servers),
            group_id=env.get("CONSUMER_GROUP", default.group_id),
            topics=tuple(t for t in env.get("TOPICS", ",".join(default.topics)).split(",") if t),
            dlq_topic=env.get("DLQ_TOPIC", default.dlq_topic),
            database_url=env.get("DATABASE_URL", default.database_url),
            security_protocol=env.get("KAFKA_SECURITY_PROTOCOL", default.security_protocol),
            sasl_mechanism=env.get("KAFKA_SASL_MECHANISM", default.sasl_mechanism),
            sasl_username=env.get("KAFKA_SASL_USERNAME", ""),
            sasl_password=env.get("KAFKA_SASL_PASSWORD", ""),
            ssl_cafile=env.get("KAFKA_SSL_CAFILE") or None,
        )

    def security(self) -> BaseSecurity | None:
        """The broker credentials of the trust boundary: SASL/SCRAM, over TLS when the protocol says so."""
        if self.security_protocol == "PLAINTEXT":
            return None
        context = ssl.create_default_context(cafile=self.ssl_cafile) if "SSL" in self.security_protocol else None
        scram = SASLScram512 if self.sasl_mechanism == "SCRAM-SHA-512" else SASLScram256
        return scram(self.sasl_username, self.sasl_password, ssl_context=context, use_ssl=context is not None)
