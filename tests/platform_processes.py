"""Every service as its own OS process, on ports and databases of its own, for the end-to-end test."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from unified_shared.testing import service_process_env

KAFKA_LOGIN = ("KAFKA_SECURITY_PROTOCOL", "KAFKA_SSL_CAFILE")


@dataclass(slots=True)
class ServiceProcess:
    name: str
    module: str
    port: int
    database: str | None
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass(slots=True)
class Platform:
    """Starts, kills and restarts service processes; each writes its log next to the others."""

    kafka: str
    pg_admin_dsn: str
    workdir: Path
    base_port: int = field(default_factory=lambda: int(os.environ.get("E2E_BASE_PORT", "18000")))
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    operator_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    key_encryption_key: str = field(default_factory=lambda: Fernet.generate_key().decode())

    def dsn(self, database: str) -> str:
        return self.pg_admin_dsn.rsplit("/", 1)[0] + f"/{database}"

    def plan(self) -> None:
        mail_dir = self.workdir / "mail"
        mail_dir.mkdir(parents=True, exist_ok=True)
        identity_url = f"http://127.0.0.1:{self.base_port + 1}"
        smtp_port = self.base_port + 25
        common = {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka,
            "IDENTITY_ISSUER": identity_url,
            "PUBLIC_URL": identity_url,
            "OPERATOR_TOKEN": self.operator_token,
            # Generated for this run, as the state folder's local secrets are.
            "IDENTITY_KEY_ENCRYPTION_KEY": self.key_encryption_key,
            "SMTP_PORT": str(smtp_port),
            "SMTP_HOST": "127.0.0.1",
            "SMTP_SINK_DIR": str(mail_dir),
            "LOG_LEVEL": "INFO",
            "FX_FETCH_ENABLED": "false",  # rates come from the shipped ECB file, never from the network
            "HTTP_HOST": "127.0.0.1",
        }
        rows: list[tuple[str, str, int, str | None, dict[str, str]]] = [
            ("smtp", "unified_identity smtp-sink", smtp_port, None, {}),
            ("identity", "unified_identity serve", self.base_port + 1, "identity", {}),
            ("regions", "unified_regions serve", self.base_port + 2, "regions", {}),
            ("seller_view", "unified_seller_view serve", self.base_port + 30, "seller_view", {}),
            ("billing", "unified_billing serve", self.base_port + 40, "billing", {}),
            ("web", "unified_web serve", self.base_port + 50, "web", self._web_env()),
        ]
        for offset, region in enumerate(("NA", "EU", "FE")):
            rows.append(
                (
                    f"orders-{region}",
                    "unified_orders serve",
                    self.base_port + 11 + offset,
                    f"orders_{region}",
                    {"REGION": region},
                )
            )
            rows.append(
                (
                    f"messages-{region}",
                    "unified_messages serve",
                    self.base_port + 21 + offset,
                    f"messages_{region}",
                    {"REGION": region},
                )
            )
        for name, module, port, db, extra in rows:
            # Each process logs in to Kafka as its own service's principal (ACLs apply as in production).
            own = service_process_env(name.split("-")[0]) if name != "smtp" else {}
            env = {**own, **common, **extra, "HTTP_PORT": str(port)}
            database = None
            if db is not None:
                database = f"e2e_{self.run}_{db.lower()}"
                env["DATABASE_URL"] = self.dsn(database)
                env["CONSUMER_GROUP"] = f"{db.lower()}-e2e-{self.run}"
            self.services[name] = ServiceProcess(name, module, port, database, env, self.workdir / f"{name}.log")

    def _web_env(self) -> dict[str, str]:
        """The web app reaches every other service of this platform, as the confidential client "web"."""
        url = lambda offset: f"http://127.0.0.1:{self.base_port + offset}"  # noqa: E731
        env = {
            "WEB_PUBLIC_URL": url(50),
            "REGIONS_URL": url(2),
            "SELLER_VIEW_URL": url(30),
            "BILLING_URL": url(40),
            "OIDC_CLIENT_ID": "unified-seller-web",
            "OIDC_CLIENT_SECRET_FILE": str(self.workdir / "web-client-secret"),
        }
        for offset, region in enumerate(("NA", "EU", "FE")):
            env[f"ORDERS_{region}_URL"] = url(11 + offset)
            env[f"MESSAGES_{region}_URL"] = url(21 + offset)
        return env

    def register_web_client(self) -> None:
        """identity's CLI registers the web app's client (redirect URIs, secret in a file of this run)."""
        web = self.services["web"].env
        subprocess.run(
            [
                sys.executable,
                "-m",
                "unified_identity",
                "register-client",
                "--client-id",
                web["OIDC_CLIENT_ID"],
                "--redirect-uri",
                f"{web['WEB_PUBLIC_URL']}/auth/callback",
                "--post-logout-redirect-uri",
                f"{web['WEB_PUBLIC_URL']}/signed-out",
                "--confidential",
                "--secret-file",
                web["OIDC_CLIENT_SECRET_FILE"],
            ],
            env={**os.environ, **self.services["identity"].env},
            check=True,
            capture_output=True,
        )

    def create_databases(self) -> None:
        import asyncio

        import asyncpg

        async def create() -> None:
            conn = await asyncpg.connect(self.pg_admin_dsn)
            try:
                for svc in self.services.values():
                    if svc.database:
                        await conn.execute(f'CREATE DATABASE "{svc.database}"')
            finally:
                await conn.close()

        asyncio.run(create())

    def drop_databases(self) -> None:
        import asyncio

        import asyncpg

        async def drop() -> None:
            conn = await asyncpg.connect(self.pg_admin_dsn)
            try:
                for svc in self.services.values():
                    if svc.database:
                        await conn.execute(f'DROP DATABASE IF EXISTS "{svc.database}" WITH (FORCE)')
            finally:
                await conn.close()

        asyncio.run(drop())

    def start(self, name: str) -> None:
        svc = self.services[name]
        if name == "web":
            self.register_web_client()
        module, *args = svc.module.split()
        # Not the test's own (admin) Kafka login: a service has only its own (svc.env).
        inherited = {k: v for k, v in os.environ.items() if k not in KAFKA_LOGIN and not k.startswith("KAFKA_SASL_")}
        env = inherited | svc.env
        log = svc.log_path.open("ab")
        svc.process = subprocess.Popen(
            [sys.executable, "-m", module, *args], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def start_all(self) -> None:
        for name in self.services:
            self.start(name)
        self.wait_ready(list(self.services))

    def wait_ready(self, names: list[str], timeout_s: float = 180.0) -> None:
        deadline = time.monotonic() + timeout_s
        for name in names:
            svc = self.services[name]
            if name == "smtp":
                continue
            while True:
                if svc.process is not None and svc.process.poll() is not None:
                    raise RuntimeError(f"{name} exited: {svc.log_path.read_text()[-3000:]}")
                try:
                    if httpx.get(f"{svc.url}/health/ready", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} not ready: {svc.log_path.read_text()[-3000:]}")
                time.sleep(0.5)

    def kill(self, name: str) -> None:
        """SIGKILL: no graceful shutdown, like a crashed host."""
        svc = self.services[name]
        if svc.process is not None and svc.process.poll() is None:
            os.killpg(svc.process.pid, signal.SIGKILL)
            svc.process.wait(timeout=30)

    def stop_all(self) -> None:
        for svc in self.services.values():
            if svc.process is not None and svc.process.poll() is None:
                os.killpg(svc.process.pid, signal.SIGTERM)
        for svc in self.services.values():
            if svc.process is not None:
                try:
                    svc.process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(svc.process.pid, signal.SIGKILL)
