"""The raw HTTP baseline: a FastAPI hello endpoint served exactly as every service is (uvicorn.run with
``unified_shared.runtime.UVICORN_OPTIONS``: the event loop and HTTP parser of ``serve``).

``python -m bench.hello PORT``."""

from __future__ import annotations

import sys
from typing import Any

import uvicorn
from fastapi import Body, FastAPI

from unified_shared.runtime import UVICORN_OPTIONS

app = FastAPI(title="hello")


@app.post("/hello")
async def hello(payload: Any = Body(...)) -> dict[str, Any]:
    return {"hello": "world", "received": isinstance(payload, dict)}


@app.get("/health/ready")
async def ready() -> dict[str, str]:
    return {"status": "ready"}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), **UVICORN_OPTIONS)  # type: ignore[arg-type]
