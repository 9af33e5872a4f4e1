"""HTTP serving of a finished run (FastAPI): explained top-k recommendations per user and domain.

`temarec serve RUN` starts it with uvicorn; `create_app(load_run(RUN))` gives the app for any ASGI server
or for tests. The model is loaded once at start; requests only rank (the item vectors of each domain are
computed once and reused by the models that cache them).

With an `api_key`, the recommendation endpoints want `Authorization: Bearer <key>` (or `X-API-Key: <key>`)
and answer 401 without it; `/health` stays open for load balancers (without the run's path). Rate
limiting and TLS belong to the reverse proxy in front.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException, Query
from pydantic import BaseModel, Field

from temarec import __version__
from temarec.serving.load import LoadedRun
from temarec.serving.recommend import (
    MAX_HISTORY,
    UnknownDomainError,
    UnknownItemError,
    UnknownUserError,
    explained_recommendations,
    explained_recommendations_for_histories,
)

MAX_K = 1000  # a bound on the work one request can ask for
MAX_USERS = 1000
#: a sent history may be longer than what is read (the latest MAX_HISTORY items), so that a client need
#: not cut it; this only bounds the request's size
MAX_HISTORY_ITEMS = 10 * MAX_HISTORY


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
    domain: str
    items: list[Item]


class HistoryRequest(BaseModel):
    histories: list[Annotated[list[str], Field(max_length=MAX_HISTORY_ITEMS)]] = Field(
        min_length=1, max_length=MAX_USERS
    )
    k: int = Field(10, ge=1, le=MAX_K)
    domains: list[str] | None = None
    tags: int = Field(3, ge=0, le=20)


class BatchRequest(BaseModel):
    users: list[str] = Field(min_length=1, max_length=MAX_USERS)
    k: int = Field(10, ge=1, le=MAX_K)
    domains: list[str] | None = None
    tags: int = Field(3, ge=0, le=20)


def _key_check(api_key: str | None):
    """A dependency that lets a request through only with the key (none: everything passes)."""
    expected = api_key.encode() if api_key else None

    def check(
        authorization: Annotated[str | None, Header()] = None,
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> None:
        if expected is None:
            return
        given = x_api_key
        if authorization and authorization[:7].lower() == "bearer ":
            given = authorization[7:].strip()
        # compare_digest: the time taken does not tell how much of a guess was right
        if given is None or not secrets.compare_digest(given.encode(), expected):
            raise HTTPException(
                401,
                "missing or wrong API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return check


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
    guarded = [Depends(_key_check(api_key))]

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

    @app.get("/recommend/{user}", response_model=list[Recommendations], dependencies=guarded)
    def recommend_one(
        user: str,
        k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
        domain: Annotated[list[str] | None, Query()] = None,
        tags: Annotated[int, Query(ge=0, le=20)] = 3,
    ) -> list[dict]:
        """Top-k next items of one user in each domain (or the `domain`s asked), with linking tags."""
        return answer([user], k, domain, tags)

    @app.post("/recommend", response_model=list[Recommendations], dependencies=guarded)
    def recommend_many(req: BatchRequest) -> list[dict]:
        """The same for several users at once (ranked in one batch)."""
        return answer(req.users, req.k, req.domains, req.tags)

    @app.post("/recommend/history", response_model=list[HistoryRecommendations], dependencies=guarded)
    def recommend_histories(req: HistoryRequest) -> list[dict]:
        """Top-k next items after histories sent in the request (item keys, oldest first): visitors
        who are not in the dataset, or sessions newer than it. An unknown item is a 422 naming it."""
        try:
            return explained_recommendations_for_histories(
                run, req.histories, k=req.k, domains=req.domains, n_tags=req.tags
            )
        except (UnknownItemError, UnknownDomainError) as e:
            raise HTTPException(422, str(e)) from None

    return app
