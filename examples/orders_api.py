"""An HTTP order service: FastAPI over the ``order`` entity; on Lambda through Mangum.

Run it locally with one command, on the embedded engine (a follower thread syncs)::

    .venv/bin/python -m examples.orders_api              # http://127.0.0.1:8080/docs

or against ``cqrs dev`` (already running; its follower syncs)::

    CQRS_ENDPOINT_URL=http://127.0.0.1:4566 .venv/bin/python -m examples.orders_api

Locally there is no authorizer, so the runner sets ``CQRS_HTTP_UNVERIFIED_JWT=1``: the
claims are read from ``Authorization: Bearer <token>`` without verifying it (the runner
prints a token to try). On Lambda, ``handler`` serves behind an API Gateway HTTP API
whose JWT authorizer verified the token (``cqrs template --http
examples.orders_api:handler --jwt-issuer ... --jwt-audience ...``). The caller's context
(user, tenant, roles, IP, request id) comes from the request: ``cqrs.http.request_context``.

Routes (the tenant is the caller's; OpenAPI at ``/openapi.json``, pages at ``/docs``):

- ``POST /orders``: create; ``PUT /orders/{code}``: full update based on ``version``;
  ``PATCH /orders/{code}``: partial update (deep merge); ``DELETE /orders/{code}``: soft
  delete. Each answers with the entity's new state (read your writes).
- ``GET /orders/{code}`` (by key), ``GET /orders/by-code/{code}`` (the code index),
  ``GET /orders?limit=&cursor=`` (a page; pass ``cursor`` back), ``GET
  /orders/{code}/history``.

Errors are JSON (``{"error", "message", "retryable"}``): 400 bad input, 403 another
tenant, 404 not found, 409 version conflict, 413 too large.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from mangum import Mangum
from pydantic import BaseModel, Field

from cqrs import (
    CommandInput,
    CommandPartialInput,
    Cqrs,
    DataRecord,
    HistoryRecord,
    InvokeContext,
    NotFoundError,
    Page,
)
from cqrs.http import UNVERIFIED_JWT_ENV, dev_token, install_error_handlers, request_context

TABLES = Path(__file__).resolve().parent.parent / "tables"
ENTITY, TYPE = "order", "ORDER"


class OrderLine(BaseModel):
    sku: str
    qty: int = Field(ge=1)


class OrderAttributes(BaseModel):
    """The order's typed attributes: validated on publish (400), typed on read."""

    status: str = "open"
    lines: list[OrderLine] = []
    note: str | None = None


class OrderCreate(BaseModel):
    code: str
    name: str
    attributes: OrderAttributes = OrderAttributes()


class OrderReplace(BaseModel):
    version: int = Field(description="the version this change is based on; -1: the latest")
    name: str
    attributes: OrderAttributes


class OrderPatch(BaseModel):
    version: int = Field(-1, description="the base version; -1: the latest")
    name: str | None = None
    attributes: dict[str, Any] | None = Field(None, description="deep-merged into the order")


Context = Annotated[InvokeContext, Depends(request_context)]
Order = DataRecord[OrderAttributes]


def default_app() -> Cqrs:
    """The app from the environment (``CQRS_ENDPOINT_URL``, ``CQRS_TABLE_PREFIX``, ...)."""
    return Cqrs.from_env(tables_dir=os.environ.get("CQRS_TABLES_DIR", str(TABLES)))


def create_api(app: Cqrs | Callable[[], Cqrs] = default_app) -> FastAPI:
    """The FastAPI service over ``app`` (or the app a factory builds on first use)."""
    api = FastAPI(title="orders", version="1.0", description=__doc__)
    install_error_handlers(api)

    @cache
    def orders() -> Any:
        cqrs = app if isinstance(app, Cqrs) else app()
        return cqrs.register(ENTITY, attributes=OrderAttributes)

    def key(ctx: InvokeContext, code: str) -> tuple[str, str]:
        return f"{TYPE}#{ctx.tenant_code}", f"{TYPE}#{code}"

    def written(ctx: InvokeContext, code: str, command: Any) -> Order:
        pk, sk = key(ctx, code)
        row = orders().data.get_fresh(pk, sk, after=command, include_deleted=True, context=ctx)
        if row is None:
            raise NotFoundError(f"no order {code!r}")
        return row

    def publish(ctx: InvokeContext, code: str, name: str, version: int, attrs: Any) -> Order:
        pk, sk = key(ctx, code)
        command = orders().commands.publish_async(
            CommandInput(pk=pk, sk=sk, code=code, name=name, tenant_code=ctx.tenant_code,
                         type=TYPE, version=version, attributes=attrs),
            ctx,
        )  # fmt: skip
        return written(ctx, code, command)

    def patch(ctx: InvokeContext, code: str, version: int, **changes: Any) -> Order:
        pk, sk = key(ctx, code)
        partial = CommandPartialInput(pk=pk, sk=sk, version=version, **changes)
        return written(ctx, code, orders().commands.publish_partial_update_async(partial, ctx))

    @api.post("/orders", status_code=201, response_model=Order)
    def create_order(body: OrderCreate, ctx: Context) -> Order:
        return publish(ctx, body.code, body.name, 0, body.attributes.model_dump())

    @api.put("/orders/{code}", response_model=Order)
    def replace_order(code: str, body: OrderReplace, ctx: Context) -> Order:
        return publish(ctx, code, body.name, body.version, body.attributes.model_dump())

    @api.patch("/orders/{code}", response_model=Order)
    def update_order(code: str, body: OrderPatch, ctx: Context) -> Order:
        changes = body.model_dump(exclude={"version"}, exclude_none=True)
        return patch(ctx, code, body.version, **changes)

    @api.delete("/orders/{code}", response_model=Order)
    def delete_order(code: str, ctx: Context, version: int = -1) -> Order:
        return patch(ctx, code, version, is_deleted=True)

    @api.get("/orders", response_model=Page[OrderAttributes])
    def list_orders(
        ctx: Context,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        cursor: str | None = None,
    ) -> Page[OrderAttributes]:
        pk = f"{TYPE}#{ctx.tenant_code}"
        return orders().data.list_by_pk(pk, limit=limit, cursor=cursor, context=ctx)

    @api.get("/orders/by-code/{code}", response_model=Order)
    def find_order(code: str, ctx: Context) -> Order:
        found = orders().data.find_by_code(ctx.tenant_code, code, context=ctx)
        if found is None:
            raise NotFoundError(f"no order with code {code!r}")
        return found

    @api.get("/orders/{code}", response_model=Order)
    def get_order(code: str, ctx: Context) -> Order:
        found = orders().data.get(*key(ctx, code), context=ctx)
        if found is None:
            raise NotFoundError(f"no order {code!r}")
        return found

    @api.get("/orders/{code}/history", response_model=list[HistoryRecord[OrderAttributes]])
    def order_history(code: str, ctx: Context) -> list[HistoryRecord[OrderAttributes]]:
        found = orders().history.list(*key(ctx, code), context=ctx)
        if not found:
            raise NotFoundError(f"no history of order {code!r}")
        return found

    return api


#: The service, on the app from the environment (built on the first request).
api = create_api()
#: The Lambda handler (API Gateway HTTP or REST API, or an ALB), ``examples.orders_api.handler``.
handler = Mangum(api, lifespan="off")


def serve(app: Cqrs, host: str, port: int, *, follow: bool) -> None:
    """Serve ``app`` over HTTP with uvicorn until interrupted; ``follow``: sync in a thread."""
    import uvicorn

    os.environ[UNVERIFIED_JWT_ENV] = "1"
    app.migrate()
    stop = threading.Event()
    service = create_api(app)
    if follow:  # the embedded engine (in-process moto) is not thread-safe: one at a time
        engine = threading.Lock()
        one_request_at_a_time(service, engine)
        threading.Thread(target=follow_locked, args=(app, stop, engine), daemon=True).start()
    token = dev_token({"sub": "alice", "custom:tenant": "acme"})
    print(f"orders API on http://{host}:{port} (OpenAPI: /docs); tokens are NOT verified")
    print(f"  curl -H 'Authorization: Bearer {token}' http://{host}:{port}/orders")
    try:
        uvicorn.run(service, host=host, port=port)
    finally:
        stop.set()


def one_request_at_a_time(service: FastAPI, engine: threading.Lock) -> None:
    """Serve requests one at a time, holding ``engine`` (uvicorn runs routes in threads)."""
    from starlette.concurrency import run_in_threadpool

    @service.middleware("http")
    async def serialized(request: Request, call_next: Callable[[Request], Any]) -> Any:
        await run_in_threadpool(engine.acquire)
        try:
            return await call_next(request)
        finally:
            engine.release()


def follow_locked(app: Cqrs, stop: threading.Event, engine: threading.Lock) -> None:
    """``app``'s follower until ``stop``, each poll holding ``engine``."""
    follower = app.follower()
    while not stop.is_set():
        with engine:
            try:
                report = follower.poll()
                idle = report.records == 0 or bool(report.failed)
            except Exception:  # the next poll retries; a dev server keeps serving
                logging.getLogger(__name__).exception("stream poll failed; retrying")
                idle = True
        if idle:
            stop.wait(0.25)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.orders_api", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    endpoint = os.environ.get("CQRS_ENDPOINT_URL") or "embedded"
    app = Cqrs.from_env(
        endpoint_url=endpoint, tables_dir=os.environ.get("CQRS_TABLES_DIR", str(TABLES))
    )
    serve(app, args.host, args.port, follow=endpoint == "embedded")


if __name__ == "__main__":
    main()
