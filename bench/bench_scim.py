"""The SCIM target on scim2-server against raw scim2-client calls on the same server: applying
2,000 creations with the same number of requests in flight. Each side writes into a tenant of
its own; the server is started here (SCIM_BENCH_URL/SCIM_BENCH_TOKEN: use that one instead)."""

import asyncio
import os
import secrets
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
from provisioning_common.definitions import ScimTarget
from scim2_client.engines.httpx2 import AsyncSCIMClient
from sequence_runner.adapters.connectors.scim_client import ScimService
from sequence_runner.adapters.connectors.scim_target import ScimTargetConnector
from sequence_runner.connections import ScimConnection
from sequence_runner.domain.records import PlannedChange

from bench.timing import report

CONCURRENCY = 8
BATCH = 500
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
REPO = Path(__file__).resolve().parents[1]


def person(i: int) -> dict[str, Any]:
    return {"uid": f"u{i:07d}", "cn": f"User {i}", "sn": f"Name{i}", "mail": f"u{i}@example.org"}


def resource(i: int) -> dict[str, Any]:
    p = person(i)
    return {
        "schemas": [USER],
        "userName": p["uid"],
        "displayName": p["cn"],
        "name": {"familyName": p["sn"]},
        "emails": [{"type": "work", "value": p["mail"]}],
    }


@asynccontextmanager
async def server() -> AsyncIterator[tuple[str, str]]:
    url, token = os.environ.get("SCIM_BENCH_URL"), os.environ.get("SCIM_BENCH_TOKEN")
    if url and token:
        yield url.rstrip("/"), token
        return
    port = int(os.environ.get("BENCH_SCIM_PORT", "27481"))
    token = secrets.token_urlsafe(16)
    process = await asyncio.create_subprocess_exec(
        *(str(REPO / ".venv/bin/scim2-server"), "--port", str(port), "--bearer-token", token),
        "--dynamic-tenants",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with httpx2.AsyncClient() as probe:
            for _ in range(100):
                try:
                    await probe.get(f"http://127.0.0.1:{port}/")
                    break
                except httpx2.TransportError:
                    await asyncio.sleep(0.1)
        yield f"http://127.0.0.1:{port}", token
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=10)


async def ours(origin: str, token: str, count: int) -> float:
    connection = ScimConnection(
        type="scim",
        base_url=f"{origin}/o{uuid.uuid4().hex[:8]}/v2",
        token=token,
        requests_per_second=10_000,
        concurrency=CONCURRENCY,
    )
    service = ScimService(connection)
    target = ScimTargetConnector(
        "bench",
        service,
        ScimTarget(
            connection="bench",
            resource="User",
            attributes={"uid": "userName", "cn": "displayName", "sn": "name.familyName"},
        ),
        "uid",
        ["uid", "cn", "sn", "mail"],
    )
    await target.prepare()
    _ = [r async for r in target.read_all()]  # discovery, as a plan would have done
    creates = [
        PlannedChange(seq=i, action="create", key=f"u{i:07d}", before=None, after=person(i))
        for i in range(count)
    ]
    started = time.perf_counter()
    for start in range(0, count, BATCH):
        await target.apply(creates[start : start + BATCH])
    took = time.perf_counter() - started
    await service.close()
    return took


async def raw(origin: str, token: str, count: int) -> float:
    async with httpx2.AsyncClient(
        base_url=f"{origin}/r{uuid.uuid4().hex[:8]}/v2/",
        headers={"Authorization": f"Bearer {token}"},
    ) as http:
        client = AsyncSCIMClient(http, check_request_payload=False, check_response_payload=False)
        await client.discover()
        gate = asyncio.Semaphore(CONCURRENCY)

        async def create(i: int) -> None:
            async with gate:
                await client.create(resource=resource(i), url="/Users")

        started = time.perf_counter()
        await asyncio.gather(*(create(i) for i in range(count)))
        return time.perf_counter() - started


async def main(
    count: int = int(os.environ.get("BENCH_SCIM_CREATES", "2000")), runs: int = 2
) -> list[str]:
    best_ours = best_raw = float("inf")
    async with server() as (origin, token):
        for run in range(runs):
            # Alternated, so neither side always meets the server warmer or busier.
            if run % 2:
                best_raw = min(best_raw, await raw(origin, token, count))
            best_ours = min(best_ours, await ours(origin, token, count))
            if not run % 2:
                best_raw = min(best_raw, await raw(origin, token, count))
    return [report(f"scim target: {count} creations", best_ours, best_raw, "raw scim2-client")]


if __name__ == "__main__":
    asyncio.run(main())
