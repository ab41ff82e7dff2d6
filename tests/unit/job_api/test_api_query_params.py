"""The query parameters a route knows, which decide the 422 for a mistyped filter."""

from typing import Annotated

from fastapi import Query
from fastapi.routing import APIRoute
from job_api.api import deps


async def with_status(status: Annotated[str | None, Query()] = None) -> None:
    """A route with one query parameter."""


async def with_sort(sort: Annotated[str | None, Query()] = None) -> None:
    """Another one."""


def test_a_route_knows_its_own_query_parameters() -> None:
    assert deps._query_params_of(APIRoute("/a", with_status)) == {"status"}


def test_a_route_never_gets_the_parameters_of_a_route_that_had_its_id() -> None:
    """An id is reused once its object is gone: each test module starts another app.

    The cache was keyed by id(route) alone, so a new route could be given the parameters of a
    collected one at the same address, and refuse its own filters (or accept unknown ones).
    """
    gone, new = APIRoute("/a", with_status), APIRoute("/b", with_sort)
    deps._query_params_of(gone)
    # What the collector and the allocator do: the entry of `gone` now sits under id(new).
    deps._known_query_params[id(new)] = deps._known_query_params.pop(id(gone))
    assert deps._query_params_of(new) == {"sort"}
