"""Broker ACLs made from ``topics.ALL_ACCESS``: each service's principal writes only the topics it owns
(and the dead-letter topics of what it consumes), reads only what it consumes, and joins only its own
consumer groups; a downstream team's principal reads what it subscribes to, writes only its own dead-letter
topic and joins only its own groups. The broker denies everything else (``allow.everyone.if.no.acl.found=false``).

``sync_acls`` makes the broker's ACLs of those principals equal to the table: missing ones are
added, ones the table no longer grants are removed. Run by ``make infra-up`` as the admin principal:
``python -m unified_shared.broker_acl`` (also creates the topics).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest

from unified_shared.kafka import make_admin
from unified_shared.topics import (
    ALL_ACCESS,
    SERVICE_ACCESS,
    TEAM_ACCESS,
    TOPICS,
    ServiceAccess,
    TeamAccess,
    create_topics,
)

# Kafka's protocol codes (org.apache.kafka.common.acl / resource).
ANY = 1
TOPIC, GROUP = 2, 3
READ, WRITE = 3, 4
ALLOW = 3
LITERAL, PREFIXED = 3, 4
# Every principal of the table is named svc-<service> or team-<team>; ACLs of others (admin) are never touched.
MANAGED_PREFIX = ("User:svc-", "User:team-")


@dataclass(frozen=True, slots=True, order=True)
class Acl:
    resource_type: int
    resource_name: str
    pattern_type: int
    principal: str
    operation: int


def group_prefixes(access: ServiceAccess | TeamAccess) -> tuple[str, ...]:
    """``seller_view`` and ``seller-view``: group names in use spell the service either way."""
    return tuple(dict.fromkeys((access.group_prefix, access.group_prefix.replace("_", "-"))))


def desired_acls(table: Iterable[ServiceAccess | TeamAccess] = ALL_ACCESS) -> set[Acl]:
    acls: set[Acl] = set()
    for access in table:
        principal = f"User:{access.principal}"
        acls.update(Acl(TOPIC, topic, LITERAL, principal, WRITE) for topic in access.writes)
        acls.update(Acl(TOPIC, topic, LITERAL, principal, READ) for topic in access.reads)
        acls.update(Acl(GROUP, prefix, PREFIXED, principal, READ) for prefix in group_prefixes(access))
    return acls


async def current_acls(admin: AIOKafkaAdminClient) -> set[Acl]:
    """The allow ACLs of the managed principals now on the broker."""
    response: Any = await admin._send_request(DescribeAclsRequest(ANY, None, ANY, None, None, ANY, ANY))  # type: ignore[arg-type]
    if response.error_code:
        raise RuntimeError(f"DescribeAcls failed: {response.error_code} {response.error_message}")
    found: set[Acl] = set()
    for resource_type, name, pattern_type, entries in response.resources:
        for principal, _host, operation, permission in entries:
            if principal.startswith(MANAGED_PREFIX) and permission == ALLOW:
                found.add(Acl(resource_type, name, pattern_type, principal, operation))
    return found


async def _create(admin: AIOKafkaAdminClient, acl: Acl) -> None:
    req = CreateAclsRequest(
        acl.resource_type, acl.resource_name, acl.pattern_type, acl.principal, "*", acl.operation, ALLOW
    )
    response: Any = await admin._send_request(req)
    for error_code, error_message in response.creation_responses:
        if error_code:
            raise RuntimeError(f"CreateAcls {acl} failed: {error_code} {error_message}")


async def _delete(admin: AIOKafkaAdminClient, acl: Acl) -> None:
    req = DeleteAclsRequest(
        acl.resource_type, acl.resource_name, acl.pattern_type, acl.principal, "*", acl.operation, ALLOW
    )
    response: Any = await admin._send_request(req)
    for error_code, error_message, _matching in response.filter_responses:
        if error_code:
            raise RuntimeError(f"DeleteAcls {acl} failed: {error_code} {error_message}")


async def sync_acls(bootstrap: str, table: Iterable[ServiceAccess | TeamAccess] = ALL_ACCESS) -> tuple[int, int]:
    """Make the broker's ACLs of the table's principals equal to the table; returns (added, removed)."""
    admin = make_admin(bootstrap, client_id="acl-admin")
    await admin.start()
    try:
        want = desired_acls(table)
        have = await current_acls(admin)
        for acl in sorted(want - have):
            await _create(admin, acl)
        for acl in sorted(have - want):
            await _delete(admin, acl)
        return len(want - have), len(have - want)
    finally:
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Create the topics and the principals' ACLs (as the admin principal)")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--principals", action="store_true", help="only print the services' and teams' principals")
    args = parser.parse_args()
    if args.principals:
        print(" ".join(access.principal for access in ALL_ACCESS))
        return
    created = asyncio.run(create_topics(args.bootstrap))
    print(f"topics: {len(TOPICS)} declared, {len(created)} created")
    added, removed = asyncio.run(sync_acls(args.bootstrap))
    print(
        f"acls: {len(desired_acls())} for {len(SERVICE_ACCESS)} service and {len(TEAM_ACCESS)} team principals, "
        f"{added} added, {removed} removed"
    )


if __name__ == "__main__":
    main()
