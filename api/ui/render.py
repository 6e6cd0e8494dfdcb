"""Templates: Jinja2 with every value escaped unless a template says otherwise (none does)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from api.ui import session

TEMPLATES = Path(__file__).parent / "templates"

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(at: datetime | None) -> str:
    return "" if at is None else at.strftime("%Y-%m-%d %H:%M UTC")


def _query(**params: Any) -> str:
    """`?a=1&b=2` of the parameters that are set, for links that keep a page's filters."""
    kept = {k: v for k, v in params.items() if v not in (None, "", False)}
    return "?" + urlencode(kept) if kept else ""


def _short(commit: str | None) -> str:
    return (commit or "")[:10]


_env.filters["when"] = _when
_env.filters["short"] = _short
_env.globals["query"] = _query


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    principal = getattr(request.state, "principal", None)
    html = _env.get_template(template).render(
        request=request,
        principal=principal,
        signed_in=session.signed_in(request),
        csrf=session.csrf_token(request),
        **context,
    )
    return HTMLResponse(html, status_code=status)
