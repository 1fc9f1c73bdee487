"""The six TFB test types in FastAPI, aiomysql's pool of 10, Jinja2 (uvicorn, one pool per worker)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from operator import itemgetter
from pathlib import Path
from typing import Any

import aiomysql
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.templating import Jinja2Templates

from benchmarks.tfb.peers.common import (
    ADDITIONAL,
    FORTUNE_SQL,
    POOL_SIZE,
    WORLD_SQL,
    clamp,
    db_params,
    update_params,
    update_sql,
)

pool: Any = None
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    global pool
    pool = await aiomysql.create_pool(minsize=POOL_SIZE, maxsize=POOL_SIZE, **db_params())
    yield
    pool.close()
    await pool.wait_closed()


app = FastAPI(lifespan=lifespan)


@app.get("/json")
async def json() -> JSONResponse:
    return JSONResponse({"message": "Hello, World!"})


@app.get("/plaintext")
async def plaintext() -> PlainTextResponse:
    return PlainTextResponse(b"Hello, World!")


@app.get("/db")
async def db() -> JSONResponse:
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(WORLD_SQL, (random.randint(1, 10000),))
        wid, number = await cur.fetchone()
    return JSONResponse({"id": wid, "randomNumber": number})


@app.get("/queries")
async def queries(queries: str | None = None) -> JSONResponse:
    worlds = []
    async with pool.acquire() as conn, conn.cursor() as cur:
        for _ in range(clamp(queries)):
            await cur.execute(WORLD_SQL, (random.randint(1, 10000),))
            wid, number = await cur.fetchone()
            worlds.append({"id": wid, "randomNumber": number})
    return JSONResponse(worlds)


@app.get("/fortunes")
async def fortunes(request: Request) -> HTMLResponse:
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(FORTUNE_SQL)
        rows = [{"id": i, "message": m} for i, m in await cur.fetchall()]
    rows.append({"id": 0, "message": ADDITIONAL})
    rows.sort(key=itemgetter("message"))
    return templates.TemplateResponse(request, "fortunes.html", {"fortunes": rows})


@app.get("/updates")
async def updates(queries: str | None = None) -> JSONResponse:
    n = clamp(queries)
    ids = sorted(random.sample(range(1, 10001), n))
    worlds = []
    async with pool.acquire() as conn, conn.cursor() as cur:
        for wid in ids:
            await cur.execute(WORLD_SQL, (wid,))
            row = await cur.fetchone()
            worlds.append({"id": row[0], "randomNumber": random.randint(1, 10000)})
        await cur.execute(update_sql(n), update_params(worlds))
    return JSONResponse(worlds)
