"""Endpoints for operations: health, Prometheus metrics, and the AsyncAPI event contract."""

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from job_api.api.asyncapi import asyncapi_page
from job_api.api.deps import ServicesDep
from job_api.api.schemas import HealthPublic
from job_api.metrics import CONTENT_TYPE_LATEST

logger = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])

HEALTH_TIMEOUT_SECONDS = 3.0


@router.get("/livez")
async def liveness() -> dict[str, str]:
    """200 while the process serves requests: the liveness probe (MongoDB or Kafka being away
    is no reason to restart job-api, so this asks neither)."""
    return {"status": "alive"}


@router.get(
    "/readyz",
    response_model=HealthPublic,
    responses={503: {"model": HealthPublic, "description": "MongoDB or Kafka does not answer."}},
)
async def readiness(services: ServicesDep) -> JSONResponse:
    """The readiness probe: /healthz under the name the other processes use."""
    return await health(services)


@router.get(
    "/healthz",
    response_model=HealthPublic,
    responses={503: {"model": HealthPublic, "description": "MongoDB or Kafka does not answer."}},
)
async def health(services: ServicesDep) -> JSONResponse:
    """200 when MongoDB answers a ping and the Kafka broker is connected; 503 otherwise."""
    mongo_ok = kafka_ok = False
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            await services.db.command("ping")
        mongo_ok = True
    except Exception as error:
        logger.warning("health: MongoDB does not answer: %s", error)
    try:
        kafka_ok = await services.broker.ping(timeout=HEALTH_TIMEOUT_SECONDS)
    except Exception as error:
        logger.warning("health: Kafka does not answer: %s", error)
    healthy = mongo_ok and kafka_ok
    body = HealthPublic(status="ok" if healthy else "unavailable", mongo=mongo_ok, kafka=kafka_ok)
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)


@router.get("/metrics", response_class=Response)
async def metrics(services: ServicesDep) -> Response:
    """Prometheus metrics of this process."""
    return Response(services.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@router.get("/asyncapi.json")
async def asyncapi_json(request: Request) -> dict[str, Any]:
    """The AsyncAPI document of the three topics and their messages."""
    document: dict[str, Any] = request.app.state.asyncapi
    return document


@router.get("/asyncapi", response_class=HTMLResponse)
async def asyncapi_html(request: Request) -> HTMLResponse:
    """The AsyncAPI document as a page."""
    return HTMLResponse(asyncapi_page(request.app.state.asyncapi))
