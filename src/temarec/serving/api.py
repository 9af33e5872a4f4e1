"""HTTP serving of a finished run (FastAPI): explained top-k recommendations per user and domain.

`temarec serve RUN` starts it with uvicorn; `create_app(load_run(RUN))` gives the app for any ASGI server
or for tests. The model is loaded once at start; requests only rank (the item vectors of each domain are
computed once and reused by the models that cache them).

With an `api_key`, every path but `/health` and the documentation (`OPEN_PATHS`) wants
`Authorization: Bearer <key>` (or `X-API-Key: <key>`) and answers 401 without it, before the request is
read further; `/health` stays open for load balancers (without the run's path). Rate
limiting and TLS belong to the reverse proxy in front.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Literal

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from temarec import __version__
from temarec.serving.load import LoadedRun
from temarec.serving.recommend import (
    UnknownDomainError,
    UnknownItemError,
    UnknownUserError,
    explained_recommendations,
    explained_recommendations_for_histories,
)

MAX_K = 1000  # a bound on the work one request can ask for
MAX_USERS = 1000
#: items of one sent history (all are excluded from its recommendations; the model reads the latest)
MAX_HISTORY_ITEMS = 10_000


class Reason(BaseModel):
    tag: str
    weight: float
    history_items: list[str]


class Item(BaseModel):
    item: str
    title: str | None
    score: float
    because: list[Reason]


class Recommendations(BaseModel):
    user: str
    domain: str
    items: list[Item]


class HistoryRecommendations(BaseModel):
    history: int  # position in the request's `histories`
    # "popularity" for an empty history (a new visitor: the training data's most popular items)
    basis: Literal["model", "popularity"]
    domain: str
    items: list[Item]


class _Request(BaseModel):
    # an unknown field is a mistake to report ('domain' for 'domains'), not to ignore; `true` is no k
    model_config = ConfigDict(extra="forbid", strict=True)


class HistoryRequest(_Request):
    histories: list[Annotated[list[str], Field(max_length=MAX_HISTORY_ITEMS)]] = Field(
        min_length=1, max_length=MAX_USERS
    )
    k: int = Field(10, ge=1, le=MAX_K)
    domains: list[str] | None = None
    tags: int = Field(3, ge=0, le=20)


class BatchRequest(_Request):
    users: list[str] = Field(min_length=1, max_length=MAX_USERS)
    k: int = Field(10, ge=1, le=MAX_K)
    domains: list[str] | None = None
    tags: int = Field(3, ge=0, le=20)


#: what stays open with a key: health checks and the API's documentation; everything else is guarded
#: (deny by default, so that no spelling of a path reaches a recommendation endpoint without the key)
OPEN_PATHS = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
UNAUTHORIZED = "missing or wrong API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"


def _has_key(request: Request, expected: bytes) -> bool:
    """Whether the request carries the key, as `Authorization: Bearer` or `X-API-Key`."""
    auth = request.headers.get("authorization")
    given = request.headers.get("x-api-key")
    if auth and auth[:7].lower() == "bearer ":
        given = auth[7:].strip()
    if given is None:
        return False
    # headers arrive as latin-1 text: back to the bytes that were sent, so a UTF-8 key matches;
    # compare_digest: the time taken does not tell how much of a guess was right
    return secrets.compare_digest(given.strip().encode("latin-1", "replace"), expected)


def create_app(run: LoadedRun, api_key: str | None = None) -> FastAPI:
    """A FastAPI app over one loaded run; with `api_key`, recommendations need that key."""
    ds = run.ds
    if api_key is not None and not api_key.strip():
        raise ValueError("api_key is empty; pass None to serve without a key")
    app = FastAPI(
        title="temarec",
        version=__version__,
        description=(
            f"{run.cfg.model.name} trained on {ds.name} ({' + '.join(ds.domains)}), run {run.path.name}"
        ),
    )
    if api_key is not None:
        expected = api_key.encode("utf-8")

        @app.middleware("http")
        async def require_key(request: Request, call_next):
            """Before anything else reads the request: an unauthenticated caller learns nothing about
            the request's shape (a bad body is a 401, not a 422 with validation details)."""
            if request.scope["path"] not in OPEN_PATHS and not _has_key(request, expected):
                return JSONResponse(
                    {"detail": UNAUTHORIZED},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
            return await call_next(request)

    def answer(user_keys: list[str], k: int, domains: list[str] | None, tags: int) -> list[dict]:
        try:
            return explained_recommendations(run, user_keys, k=k, domains=domains, n_tags=tags)
        except UnknownUserError as e:
            raise HTTPException(404, str(e)) from None
        except UnknownDomainError as e:
            raise HTTPException(422, str(e)) from None

    @app.get("/health")
    def health() -> dict:
        """What is being served (the run's folder on disk only when no key guards the server: /health
        stays open, and a guarded server should not show its file system to anyone who asks)."""
        where = {} if api_key else {"run": str(run.path)}
        return {
            "status": "ok",
            "temarec": __version__,
            "model": run.cfg.model.name,
            "dataset": ds.name,
            "domains": list(ds.domains),
            "users": len(ds.user_keys),
            "items": int(ds.info().n_items),
            **where,
        }

    @app.get("/recommend/{user}", response_model=list[Recommendations])
    def recommend_one(
        request: Request,
        user: str,
        k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
        domain: Annotated[list[str] | None, Query()] = None,
        tags: Annotated[int, Query(ge=0, le=20)] = 3,
    ) -> list[dict]:
        """Top-k next items of one user in each domain (or the `domain`s asked), with linking tags."""
        _refuse_unknown_query(request, {"k", "domain", "tags"})
        return answer([user], k, domain, tags)

    @app.post("/recommend", response_model=list[Recommendations])
    def recommend_many(req: BatchRequest, request: Request) -> list[dict]:
        """The same for several users at once (ranked in one batch)."""
        _refuse_unknown_query(request, set())  # `?k=50` would otherwise be ignored for the body's k
        return answer(req.users, req.k, req.domains, req.tags)

    @app.post("/recommend/history", response_model=list[HistoryRecommendations])
    def recommend_histories(req: HistoryRequest, request: Request) -> list[dict]:
        """Top-k next items after histories sent in the request (item keys, oldest first): visitors
        who are not in the dataset, or sessions newer than it. An unknown item is a 422 naming it."""
        _refuse_unknown_query(request, set())
        try:
            return explained_recommendations_for_histories(
                run, req.histories, k=req.k, domains=req.domains, n_tags=req.tags
            )
        except (UnknownItemError, UnknownDomainError) as e:
            raise HTTPException(422, str(e)) from None

    if api_key is not None:
        _document_key(app)
    return app


def _refuse_unknown_query(request: Request, known: set[str]) -> None:
    """A 422 for a query parameter the endpoint does not read, shaped as the bodies' `extra_forbidden`
    errors: `?domians=Music` would otherwise be ignored and answer every domain."""
    extra = [name for name in request.query_params if name not in known]
    if extra:
        raise HTTPException(
            422,
            [
                {
                    "type": "extra_forbidden",
                    "loc": ["query", name],
                    "msg": "Extra inputs are not permitted ("
                    + (
                        f"this endpoint reads {', '.join(sorted(known))})"
                        if known
                        else "send settings in the body)"
                    ),
                    "input": request.query_params[name],
                }
                for name in dict.fromkeys(extra)
            ],
        )


def _document_key(app: FastAPI) -> None:
    """Say in the OpenAPI schema (and so on /docs, with its Authorize button) what the middleware
    wants: the key is checked there, before routing, so no route declares it itself."""
    make_schema = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = make_schema()
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            }
            schema["security"] = [{"bearer": []}, {"apiKey": []}]  # either one
            for path, ops in schema.get("paths", {}).items():
                if path in OPEN_PATHS:
                    for op in ops.values():
                        op["security"] = []
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
