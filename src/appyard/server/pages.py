"""Error pages shown to users of apps: short, with the app path and the reason.

Browsers get HTML; curl and API clients get plain text. Never a traceback.
"""

from __future__ import annotations

import html

from aiohttp import web

_TITLES = {
    403: "Forbidden",
    404: "Not Found",
    500: "App Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def error_response(
    request: web.BaseRequest,
    status: int,
    app_path: str,
    reason: str,
    log_tail: str = "",
    headers: dict[str, str] | None = None,
) -> web.Response:
    title = _TITLES.get(status, "Error")
    if "text/html" in request.headers.get("Accept", ""):
        log_html = f"<h3>Log</h3><pre>{html.escape(log_tail)}</pre>" if log_tail else ""
        body = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{status} {title}"
            f"</title></head><body style='font-family:sans-serif;max-width:60em;margin:2em'>"
            f"<h1>{status} {title}</h1><p><b>App:</b> {html.escape(app_path or '-')}</p>"
            f"<p><b>Reason:</b> {html.escape(reason)}</p>{log_html}"
            f"<p style='color:#888'>appyard</p></body></html>"
        )
        content_type = "text/html"
    else:
        log_text = f"\n--- log ---\n{log_tail.rstrip()}\n" if log_tail else ""
        body = f"{status} {title}\napp: {app_path or '-'}\nreason: {reason}\n{log_text}"
        content_type = "text/plain"
    return web.Response(status=status, text=body, content_type=content_type, headers=headers)
