"""What the REST reads share: the read model of the app, list parameters (`limit`, `cursor`, `from`, `to`), the
page envelope `{"items": [...], "next_cursor": ...}` and the errors that name the parameter at fault (400)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import Query, Request
from pydantic import BaseModel, ConfigDict

from gateway_service.config import GatewayConfig
from gateway_service.problems import Problem
from gateway_service.readmodel import Cursors, Feed, InvalidCursor, ReadModel
from gateway_service.readmodel.convert import parse_rfc3339
from gateway_service.readmodel.tables import Page, Series, Table

T = TypeVar("T")
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
DEFAULT_MAX_RANGE_S = 92 * 24 * 3600
MAX_TEXT = 128


class ReadModelUnavailable(Problem):
    status, title = 503, "service unavailable"

    def __init__(self) -> None:
        super().__init__("the read model is not running on this gateway", headers={"Retry-After": "5"})


class BadParameter(Problem):
    status, title = 400, "invalid parameter"


class ItemsPage(BaseModel, Generic[T]):
    """A page of a list, newest first; `next_cursor` (opaque) fetches the next page, null on the last."""

    model_config = ConfigDict(extra="forbid")
    items: list[T]
    next_cursor: str | None


def feed_of(request: Request) -> Feed:
    feed: Feed | None = getattr(request.app.state, "feed", None)
    if feed is None:
        raise ReadModelUnavailable()
    return feed


def model_of(request: Request) -> ReadModel:
    return feed_of(request).model


def cursors_of(request: Request) -> Cursors:
    cursors: Cursors | None = getattr(request.app.state, "cursors", None)
    if cursors is None:
        cursors = request.app.state.cursors = Cursors()
    return cursors


def max_range_s(request: Request) -> int:
    engine = getattr(request.app.state, "engine", None)
    config: GatewayConfig | None = getattr(engine, "config", None)
    return config.api_max_range_s if config is not None else DEFAULT_MAX_RANGE_S


def parse_time(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    if len(value) > 40:
        raise BadParameter(f"{name}: not an RFC 3339 time", field=name)
    try:
        return parse_rfc3339(value)
    except ValueError:
        raise BadParameter(
            f"{name}: not an RFC 3339 time (like 2026-12-01T14:30:00Z or 2026-12-01)", field=name
        ) from None


def time_range(from_: str | None, to: str | None, now_ns: int, max_s: int) -> tuple[int | None, int | None]:
    """`from` inclusive, `to` exclusive, as UNIX ns. 400 naming `from` or `to` when one is not a time, `from` is
    not before `to`, or the range (to `to`, else now) is longer than `max_s`."""
    start, end = parse_time(from_, "from"), parse_time(to, "to")
    if start is not None and end is not None and start >= end:
        raise BadParameter("from: must be before to", field="from")
    if start is not None and (end if end is not None else now_ns) - start > max_s * 1_000_000_000:
        field = "to" if end is not None else "from"
        raise BadParameter(f"{field}: the range from..to is longer than {max_s} s; ask for a shorter one", field=field)
    return start, end


@dataclass(frozen=True)
class ListQuery:
    limit: int
    cursor: str | None
    from_ns: int | None
    to_ns: int | None
    filters: dict[str, Any]


async def list_query(  # a coroutine: FastAPI would run a plain function in its thread pool
    request: Request,
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"page size (at most {MAX_LIMIT})"),
    cursor: str | None = Query(None, max_length=512, description="next_cursor of the previous page"),
    from_: str | None = Query(None, alias="from", max_length=40, description="RFC 3339, inclusive"),
    to: str | None = Query(None, max_length=40, description="RFC 3339, exclusive"),
) -> ListQuery:
    model = model_of(request)
    start, end = time_range(from_, to, model.clock_ns(), max_range_s(request))
    return ListQuery(limit, cursor, start, end, {"from": start, "to": end})


def paged(
    request: Request,
    table: Table[Any] | Series[Any],
    query: ListQuery,
    *,
    where: Any = None,
    filters: dict[str, Any] | None = None,
    view: Any = None,
) -> dict[str, Any]:
    """One page of a table as `{"items", "next_cursor"}`: the cursor is checked against this route and filters."""
    cursors = cursors_of(request)
    scope = cursors.scope(request.url.path, {**query.filters, **(filters or {})})
    after = None
    if query.cursor:
        try:
            after = cursors.decode(query.cursor, scope)
        except InvalidCursor as error:
            raise BadParameter(str(error), field="cursor") from None
    page: Page[Any] = table.page(query.limit, after=after, from_ns=query.from_ns, to_ns=query.to_ns, where=where)
    items = [view(item) for item in page.items] if view is not None else page.items
    next_cursor = cursors.encode(page.next_after, scope) if page.next_after is not None else None
    return {"items": items, "next_cursor": next_cursor}
