"""The peers of benchmarks/async_handlers.py: the same ``async def`` endpoint on FastAPI and Flask.

``fastapi_app`` runs on uvicorn (``uvicorn benchmarks.apps.async_peers:fastapi_app``),
``flask_app`` on gunicorn's gevent worker (``flask[async]``: each ``async def``
view runs through asgiref's ``async_to_sync``). ``GET /`` says hello (the
readiness probe), ``GET /async`` waits 100 ms on ``asyncio.sleep``.
"""

from __future__ import annotations

import asyncio
from typing import Any

fastapi_app: Any = None
flask_app: Any = None

try:
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse
except ImportError:  # only the Flask peer's process lacks nothing; FastAPI's lacks Flask
    pass
else:
    fastapi_app = FastAPI()

    @fastapi_app.get("/", response_class=PlainTextResponse)
    async def fastapi_index() -> str:
        """Say hello."""
        return "Hello, world!"

    @fastapi_app.get("/async", response_class=PlainTextResponse)
    async def fastapi_async() -> str:
        """Wait 100 ms, then answer."""
        await asyncio.sleep(0.1)
        return "slept"


try:
    from flask import Flask
except ImportError:
    pass
else:
    flask_app = Flask(__name__)

    @flask_app.route("/")
    def flask_index() -> str:
        """Say hello."""
        return "Hello, world!"

    @flask_app.route("/async")
    async def flask_async() -> str:
        """Wait 100 ms, then answer."""
        await asyncio.sleep(0.1)
        return "slept"
