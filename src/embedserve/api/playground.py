"""The playground page: try a served model in a browser (`GET /playground`; `/` redirects)."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse

router = APIRouter(include_in_schema=False)
PAGE = (files("embedserve.api") / "playground.html").read_text(encoding="utf-8")


@router.get("/playground")
async def playground(request: Request) -> HTMLResponse:
    """The page, told whether the API needs a key (then it shows a key field)."""
    auth = "true" if request.app.state.auth else "false"
    return HTMLResponse(PAGE.replace("__AUTH__", auth), headers={"cache-control": "no-cache"})


@router.get("/")
async def home() -> RedirectResponse:
    """`/` is the playground (relative: it works under a proxy's root path too)."""
    return RedirectResponse("playground", status_code=307)
