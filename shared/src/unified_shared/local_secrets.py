"""The local secrets and Kafka client settings that ``make infra-up`` generates into the state folder
(``$US_STATE_DIR/secrets.env``, mode 0600, and ``$US_STATE_DIR/kafka.env``), for the processes of a local
platform, the demo and the tests. Production sets the same environment variables from its own secret store.

``python -m unified_shared.local_secrets run <service> -- <command...>`` runs one platform process with
its own Kafka principal and only the secrets that service uses (deploy/Procfile), never the others'.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from unified_shared.topics import access_of

ADMIN_PRINCIPAL = "admin"
# Secrets a service reads from its environment, beyond its Kafka login.
SERVICE_SECRETS: dict[str, tuple[str, ...]] = {
    "identity": ("OPERATOR_TOKEN", "CSRF_SECRET", "IDENTITY_KEY_ENCRYPTION_KEY"),
    "regions": ("OPERATOR_TOKEN",),
    "billing": ("OPERATOR_TOKEN",),
}


class MissingLocalSecrets(RuntimeError):
    pass


def state_dir() -> Path:
    return Path(os.environ.get("US_STATE_DIR") or "/var/tmp/unified-seller")


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() and not name.lstrip().startswith("#"):
            values[name.strip()] = value.strip()
    return values


def local_secrets(state: Path | None = None) -> dict[str, str]:
    path = (state or state_dir()) / "secrets.env"
    if not path.is_file():
        raise MissingLocalSecrets(f"{path} is missing: run `make infra-up` (it generates the local secrets)")
    return read_env_file(path)


def password_var(principal: str) -> str:
    """The secrets.env name of a principal's SCRAM password (deploy/infra.sh uses the same rule)."""
    return (
        "KAFKA_ADMIN_PASSWORD"
        if principal == ADMIN_PRINCIPAL
        else f"KAFKA_PASSWORD_{principal.upper().replace('-', '_')}"
    )


def kafka_client_env(principal: str, state: Path | None = None) -> dict[str, str]:
    """``KAFKA_*`` variables (bootstrap, protocol, mechanism, CA, user, password) for one principal."""
    folder = state or state_dir()
    client = folder / "kafka.env"
    if not client.is_file():
        raise MissingLocalSecrets(f"{client} is missing: run `make infra-up`")
    password = local_secrets(folder).get(password_var(principal))
    if not password:
        raise MissingLocalSecrets(f"no password for {principal} in {folder}/secrets.env: run `make infra-up`")
    return {**read_env_file(client), "KAFKA_SASL_USERNAME": principal, "KAFKA_SASL_PASSWORD": password}


def service_env(service: str, state: Path | None = None) -> dict[str, str]:
    """What one service process needs from the state folder: its Kafka login and its own secrets."""
    env = kafka_client_env(access_of(service).principal, state)
    secrets = local_secrets(state)
    env.update({name: secrets[name] for name in SERVICE_SECRETS.get(service, ()) if name in secrets})
    return env


def use_local_admin_login() -> bool:
    """For tests and benchmarks: unless the environment already says how to log in to Kafka, log in as the
    local admin from the state folder. False when there is no such folder (a broker of another kind)."""
    if os.environ.get("KAFKA_SECURITY_PROTOCOL"):
        return False
    try:
        env = kafka_client_env(ADMIN_PRINCIPAL)
    except MissingLocalSecrets:
        return False
    if "KAFKA_BOOTSTRAP_SERVERS" in os.environ:  # where the broker is stays the environment's choice
        env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    os.environ.update(env)
    return True


def process_env(name: str, state: Path | None = None) -> dict[str, str]:
    """A service's environment (``orders``), or a downstream team's Kafka login (``team-<team>``: teams get no
    platform secrets)."""
    return kafka_client_env(name, state) if name.startswith("team-") else service_env(name, state)


def main(argv: list[str]) -> None:
    if len(argv) < 4 or argv[0] != "run" or argv[2] != "--":
        raise SystemExit("usage: python -m unified_shared.local_secrets run <service>|team-<team> -- <command...>")
    name, command = argv[1], argv[3:]
    try:
        env = {**os.environ, **process_env(name)}
    except MissingLocalSecrets as exc:
        raise SystemExit(str(exc)) from None
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    main(sys.argv[1:])
