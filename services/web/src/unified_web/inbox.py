"""Buyer messages: one inbox across marketplaces (badges, late-response rates), a thread, a reply and
"no response needed", each sent to the regional messages service of the thread's marketplace."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from unified_shared import catalog
from unified_web import domain
from unified_web.upstream import NotFound, UpstreamError
from unified_web.web import User, check_csrf, form_data, redirect, render, require_page

router = APIRouter()


@router.get("/messages")
async def inbox(request: Request) -> Response:
    user = await require_page(request, "/messages")
    data = await user.platform.messages_overview()
    notice = request.query_params.get("done")
    return render(
        request,
        "messages.html",
        {"data": data, "threads": data.get("threads", []), "notice": notice if notice in _NOTICES else None},
        user=user,
    )


_NOTICES = {"replied": "Your reply was sent.", "marked": "Marked as needing no response."}


def _code(marketplace: str) -> str:
    try:
        return catalog.resolve(marketplace).code
    except catalog.UnknownMarketplace:
        raise NotFound(404, "no such marketplace") from None


@router.get("/messages/{marketplace}/{thread_id}")
async def thread(request: Request, marketplace: str, thread_id: str) -> Response:
    user = await require_page(request, "/messages")
    code = _code(marketplace)
    data = await user.platform.thread(code, thread_id)
    return render(request, "thread.html", _thread_context(code, data), user=user)


def _thread_context(code: str, data: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"thread": data, "code": code, "entries": data.get("entries", []), "error": None, "body": "", **extra}


async def _thread_form(request: Request, marketplace: str) -> tuple[User, str, dict[str, Any]]:
    """A form posted on a thread: the user (who may see the inbox), the marketplace's code, the form (its
    CSRF token checked)."""
    user = await require_page(request, "/messages")
    code = _code(marketplace)
    form = await form_data(request)
    check_csrf(user, form, request)
    return user, code, form


async def _thread_again(request: Request, user: User, code: str, thread_id: str, status: int, **extra: Any) -> Response:
    """The thread page once more, with what was refused (``error``) and what was typed (``body``)."""
    data = await user.platform.thread(code, thread_id)
    return render(request, "thread.html", _thread_context(code, data, **extra), user=user, status=status)


@router.post("/messages/{marketplace}/{thread_id}/reply")
async def reply(request: Request, marketplace: str, thread_id: str) -> Response:
    user, code, form = await _thread_form(request, marketplace)
    try:
        body = domain.reply_body(str(form.get("body", "")))
        await user.platform.reply(code, thread_id, body)
    except (domain.FormError, UpstreamError) as exc:
        if isinstance(exc, UpstreamError) and exc.status not in (409, 422):
            raise
        error = exc if isinstance(exc, domain.FormError) else domain.FormError(exc.field or "body", exc.detail)
        return await _thread_again(request, user, code, thread_id, 422, error=error, body=str(form.get("body", "")))
    return redirect("/messages?done=replied", request)


@router.post("/messages/{marketplace}/{thread_id}/no-response-needed")
async def no_response_needed(request: Request, marketplace: str, thread_id: str) -> Response:
    user, code, _ = await _thread_form(request, marketplace)
    try:
        await user.platform.no_response_needed(code, thread_id)
    except UpstreamError as exc:
        if exc.status not in (409, 422):
            raise
        return await _thread_again(request, user, code, thread_id, 409, error=domain.FormError("thread", exc.detail))
    return redirect("/messages?done=marked", request)
