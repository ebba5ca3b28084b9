"""HTTP API of FX rates: the days ECB published (read by every signed-in caller) and the operator's import."""

from __future__ import annotations

import datetime as dt
import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import AfterValidator, BaseModel, Field
from starlette.datastructures import UploadFile

from unified_regions import ecb
from unified_regions.api import PrincipalDep
from unified_regions.fx_imports import FxImports
from unified_regions.settings import Settings
from unified_shared.bounds import LineStr, QueryDate, check_line, check_query_date
from unified_shared.errors import Invalid, Unauthorized
from unified_shared.problems import Problem

router = APIRouter()


async def _fx(request: Request) -> FxImports:
    fx: FxImports = request.app.state.fx
    return fx


FxDep = Annotated[FxImports, Depends(_fx)]


# -- FX rates ---------------------------------------------------------------------------------------
class FxDayOut(BaseModel):
    date: dt.date
    requested_date: dt.date
    base: str = "EUR"
    rates: dict[str, str] = Field(description="units of each currency per 1 EUR, decimal strings")
    derived: dict[str, str]
    source: str
    revision: int


class FxSummaryOut(BaseModel):
    days: int
    first_date: dt.date | None
    last_date: dt.date | None


@router.get("/v1/fx-rates", tags=["fx"])
async def fx_rates_summary(principal: PrincipalDep, fx: FxDep) -> FxSummaryOut:
    return FxSummaryOut(**await fx.summary())


@router.get("/v1/fx-rates/{date}", tags=["fx"])
async def fx_rates_of_day(
    date: Annotated[dt.date, Path(description="YYYY-MM-DD, 1970 .. 2100"), AfterValidator(check_query_date)],
    principal: PrincipalDep,
    fx: FxDep,
    on_or_before: Annotated[bool, Query(description="else the last published day before it")] = False,
) -> FxDayOut:
    """The rates ECB published for ``date``. A currency without a rate that day is absent, never zero."""
    day = await fx.day(date, on_or_before=on_or_before)
    return FxDayOut(
        date=day.date,
        requested_date=date,
        rates={c: format(r, "f") for c, r in sorted(day.rates.items())},
        derived=day.derived,
        source=day.source,
        revision=day.revision,
    )


def _require_operator(settings: Settings, token: str | None) -> None:
    if not settings.operator_token:
        raise Problem(503, "FX import disabled", "OPERATOR_TOKEN is not configured on this service")
    if token is None or not hmac.compare_digest(token.encode(), settings.operator_token.encode()):
        raise Unauthorized(None, "a valid X-Operator-Token header is required")


async def _upload(request: Request, limit: int) -> tuple[bytes, str]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(413, "File too large", f"at most {limit} bytes")
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Invalid("file", "multipart upload needs a 'file' field")
        data = await upload.read()
        name = upload.filename or "upload"
        try:
            check_line(name)
        except ValueError as exc:
            raise Invalid("file", f"file name {exc}") from None
    else:
        data = await request.body()
        name = request.query_params.get("filename") or "upload"
    if len(data) > limit:
        raise Problem(413, "File too large", f"at most {limit} bytes")
    if not data:
        raise Invalid(None, "the request carries no file")
    return data, name


class FxImportOut(BaseModel):
    days_in_file: int
    days_considered: int
    published: int
    corrected: int
    unchanged: int
    first_date: dt.date | None
    last_date: dt.date | None
    corrected_dates: list[dt.date]


@router.post("/v1/admin/fx-rates/import", tags=["fx"])
async def import_fx_rates(
    request: Request,
    response: Response,
    *,
    fx: FxDep,
    x_operator_token: Annotated[str | None, Header()] = None,
    since: Annotated[QueryDate | None, Query(description="import only days on or after this date")] = None,
    filename: Annotated[LineStr | None, Query(max_length=200, description="names a raw-body upload")] = None,
) -> FxImportOut:
    """Import an ECB file (eurofxref-hist CSV/ZIP or eurofxref-daily XML): multipart field ``file`` or the
    raw body (``?filename=`` names it). All or nothing: a malformed file is rejected with its line."""
    settings: Settings = request.app.state.settings
    _require_operator(settings, x_operator_token)
    data, name = await _upload(request, settings.fx_max_upload_bytes)
    try:
        report = await fx.import_fx(data, filename=name, origin=f"uploaded {name}", since=since)
    except ecb.FxFileError as exc:
        raise Invalid(
            None, str(exc), title="Malformed rates file", line=exc.line, part=exc.part, reason=exc.reason
        ) from None
    result: dict[str, Any] = report.as_dict()
    return FxImportOut(**result)
