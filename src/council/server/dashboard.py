"""The dashboard: server-rendered pages (Jinja) made live with htmx (vendored, no build step).

The runs list refreshes itself; a running run's page listens to the run's event stream (SSE)
and re-renders its body when a step starts or ends. Pages see what the caller's key sees.
"""

import time
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from council.server import queries, views
from council.server.charts import bar_chart

HERE = Path(__file__).parent
LIST_LIMIT = 200


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    return f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def add_dashboard(app: FastAPI, caller, key_cookie: str) -> None:
    """Mount the dashboard's pages and static files on `app` (out of the API's schema)."""
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["duration"] = _duration
    templates.env.filters["when"] = _when
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    def page_caller(request: Request):
        try:
            return caller(request)
        except HTTPException as exc:
            if exc.status_code == 401:  # a browser: to the page that takes a key
                raise HTTPException(303, headers={"Location": "/login"}) from None
            raise

    Who = Annotated[object, Depends(page_caller)]

    def state(request: Request):
        return request.app.state.council

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def runs_page(request: Request, who: Who) -> HTMLResponse:
        rows = queries.list_runs(state(request).store, who.sees, limit=LIST_LIMIT)
        return templates.TemplateResponse(request, "runs.html", {"runs": rows})

    @app.get("/ui/runs", response_class=HTMLResponse, include_in_schema=False)
    def runs_rows(request: Request, who: Who) -> HTMLResponse:
        rows = queries.list_runs(state(request).store, who.sees, limit=LIST_LIMIT)
        return templates.TemplateResponse(request, "_runs_rows.html", {"runs": rows})

    def _run(request: Request, who, run_id: str):
        st = state(request)
        row = queries.get_run(st.store, run_id, who.sees)
        if row is None:
            raise HTTPException(404, f"no run {run_id}")
        repo = st.store.get_run(run_id).repo  # the checkout on this machine (a URL's clone)
        return row, views.run_page(st.store, run_id, repo, row.branch)

    @app.get("/runs/{run_id}", response_class=HTMLResponse, include_in_schema=False)
    def run_page(request: Request, run_id: str, who: Who) -> HTMLResponse:
        row, page = _run(request, who, run_id)
        live = row.job_status in ("queued", "running")
        return templates.TemplateResponse(
            request, "run.html", {"run": row, "page": page, "live": live}
        )

    @app.get("/ui/runs/{run_id}", response_class=HTMLResponse, include_in_schema=False)
    def run_body(request: Request, run_id: str, who: Who) -> HTMLResponse:
        row, page = _run(request, who, run_id)
        return templates.TemplateResponse(request, "_run_body.html", {"run": row, "page": page})

    @app.get("/costs", response_class=HTMLResponse, include_in_schema=False)
    def costs_page(request: Request, who: Who) -> HTMLResponse:
        st = state(request)
        visible = {r.id for r in queries.list_runs(st.store, who.sees, limit=1_000_000)}
        totals = views.cost_totals(st.store, visible)
        return templates.TemplateResponse(
            request,
            "costs.html",
            {
                "persona_chart": bar_chart("cost per persona", totals.persona),
                "model_chart": bar_chart("cost per model", totals.model),
                "day_chart": bar_chart("cost per day (UTC)", totals.day),
            },
        )

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form() -> HTMLResponse:
        # Posted, never a query parameter: a key in a URL stays in history and access logs.
        return HTMLResponse(
            '<!doctype html><title>AI Council</title><form method="post" action="/login">'
            '<label>API key <input name="key" type="password" autofocus></label> '
            "<button>open the dashboard</button></form>"
        )

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> RedirectResponse:
        raw = b""
        async for chunk in request.stream():  # a form with one key: stop reading at 4 KiB
            raw += chunk
            if len(raw) > 4096:
                break
        body = raw[:4096].decode("utf-8", "replace")
        key = (parse_qs(body).get("key") or [""])[0].strip()
        if not key:
            return RedirectResponse("/login", status_code=303)
        # The key goes into an HttpOnly cookie; the dashboard's requests carry it.
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(key_cookie, key, httponly=True, samesite="strict")
        return response
