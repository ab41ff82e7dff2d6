"""Answers for the infrastructure being away: 503 with what to do, never a bare 500."""

import logging

from aiokafka.errors import KafkaError, KafkaTimeoutError, RequestTimedOutError
from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pymongo.errors import PyMongoError

from job_api.api.queries import UNKNOWN_QUERY_PARAMETER

logger = logging.getLogger(__name__)


def unavailable_detail(error: BaseException) -> str | None:
    """The 503 message for an error of Kafka or MongoDB; None for any other error."""
    if isinstance(error, KafkaTimeoutError | RequestTimedOutError):
        # The broker may have written the message and its acknowledgement been lost: saying
        # "nothing was published" here would invite a second command.
        return (
            "Kafka did not confirm in time, so the message may or may not have been published; "
            "read the job (its status, its last refused command) before retrying"
        )
    if isinstance(error, KafkaError):
        return "Kafka did not answer, so nothing was published; retry in a moment"
    if isinstance(error, PyMongoError):
        return "MongoDB did not answer; retry in a moment"
    return None


async def _unavailable(request: Request, error: Exception) -> JSONResponse:
    detail = unavailable_detail(error) or "a service job-api needs did not answer"
    logger.error("%s %s: %s (%r)", request.method, request.url.path, detail, error)
    return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "5"})


async def _invalid(request: Request, error: Exception) -> JSONResponse:
    """FastAPI's list of field errors, but one sentence for unknown query parameters."""
    assert isinstance(error, RequestValidationError)
    for item in error.errors():
        if item.get("type") == UNKNOWN_QUERY_PARAMETER:
            return JSONResponse({"detail": item["msg"]}, status_code=422)
    return await request_validation_exception_handler(request, error)


def add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(KafkaError, _unavailable)
    app.add_exception_handler(PyMongoError, _unavailable)
    app.add_exception_handler(RequestValidationError, _invalid)
