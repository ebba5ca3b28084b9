"""What a page shows when something is refused: a clear "not allowed", never another tenant's data."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from unified_shared.problems import Problem
from unified_web.upstream import NotAllowed, NotFound, SignedOut, UpstreamError
from unified_web.web import NotSignedIn, PageNotAllowed, current_user, render


def install_page_errors(app: FastAPI) -> None:
    """Refusals as pages: sign-in redirects (htmx-aware), "not allowed", "not found", upstream errors."""

    async def not_signed_in(request: Request, exc: Exception) -> Response:
        target = "/signin"
        if request.method == "GET" and request.headers.get("hx-request") != "true":
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            target += f"?next={quote(path, safe='')}"
        if request.headers.get("hx-request") == "true":
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    async def page_error(request: Request, exc: Exception) -> Response:
        try:
            user = await current_user(request)
        except NotSignedIn:
            return await not_signed_in(request, exc)
        if isinstance(exc, PageNotAllowed | NotAllowed):
            detail = exc.detail if isinstance(exc, NotAllowed) else "Your role or permissions do not include this page."
            return render(request, "not_allowed.html", {"detail": detail}, user=user, status=403)
        if isinstance(exc, NotFound):
            return render(request, "error.html", {"title": "Not found", "detail": exc.detail}, user=user, status=404)
        if isinstance(exc, Problem):
            return render(
                request, "error.html", {"title": exc.title, "detail": exc.detail}, user=user, status=exc.status
            )
        assert isinstance(exc, UpstreamError)
        status = 502 if exc.status >= 500 else exc.status
        title = "The platform did not answer" if exc.status >= 500 else "Refused"
        return render(request, "error.html", {"title": title, "detail": exc.detail}, user=user, status=status)

    app.add_exception_handler(NotSignedIn, not_signed_in)
    app.add_exception_handler(SignedOut, not_signed_in)
    for kind in (PageNotAllowed, UpstreamError, Problem):
        app.add_exception_handler(kind, page_error)
