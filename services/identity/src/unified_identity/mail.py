"""Invitation mails: composed here, sent over SMTP with aiosmtplib; and the local SMTP sink (aiosmtpd)
that stores every received mail as a ``.eml`` file, for development and tests."""

from __future__ import annotations

import logging
import os
import time
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import aiosmtplib
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from unified_identity import domain
from unified_identity.settings import Settings

log = logging.getLogger(__name__)


class MailError(RuntimeError):
    """The SMTP server did not take the mail."""


def _message(*, sender: str, to: str, subject: str, text: str) -> EmailMessage:
    """A plain-text mail with the headers every mail of this service carries."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain="unified-seller.localhost")
    # 8bit: the link stays one readable line in the raw mail (no quoted-printable soft breaks).
    msg.set_content(text, cte="8bit")
    return msg


def _until(expires_at: datetime) -> str:
    return expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def invitation_message(
    *,
    sender: str,
    to: str,
    account_name: str,
    role: str,
    link: str,
    expires_at: datetime,
    invitee_name: str | None = None,
) -> EmailMessage:
    text = (
        f"Hello{f' {invitee_name}' if invitee_name else ''},\n\n"
        f"you have been invited to join {account_name} on unified-seller as {role}.\n\n"
        f"Accept the invitation and choose your password here (the link works once, until {_until(expires_at)}):\n\n"
        f"{link}\n\n"
        f"If you did not expect this mail, ignore it.\n"
    )
    subject = f"You are invited to join {account_name} on unified-seller"
    return _message(sender=sender, to=to, subject=subject, text=text)


def verification_message(*, sender: str, to: str, link: str, expires_at: datetime) -> EmailMessage:
    text = (
        f"Hello,\n\n"
        f"please confirm that this address is yours (the link works once, until {_until(expires_at)}):\n\n"
        f"{link}\n\n"
        f"If you did not ask for this mail, ignore it.\n"
    )
    return _message(sender=sender, to=to, subject="Confirm your e-mail address for unified-seller", text=text)


async def send(settings: Settings, message: EmailMessage) -> None:
    try:
        await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            start_tls=settings.smtp_starttls,
            timeout=settings.smtp_timeout_s,
        )
    except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
        raise MailError(f"cannot deliver mail via {settings.smtp_host}:{settings.smtp_port}: {exc}") from exc


async def send_or_refuse(settings: Settings, message: EmailMessage, what: str) -> None:
    """Send the mail of a command (``what``: invitation, verification); a refusal is the domain's MailRefused,
    raised before the command commits, so nothing it created outlives the mail that was not sent."""
    try:
        await send(settings, message)
    except MailError as exc:
        raise domain.MailRefused(None, f"the {what} mail could not be sent: {exc}") from None


class EmlFolderHandler:
    """aiosmtpd handler: writes each accepted mail to ``<dir>/<time>-<id>.eml`` (atomically)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        header = (
            f"X-Sink-Mail-From: {envelope.mail_from}\r\nX-Sink-Rcpt-To: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(header + content)
        tmp.replace(self.directory / name)  # readers never see half a mail
        log.info("mail stored", extra={"file": name, "rcpt": envelope.rcpt_tos})
        return "250 Message accepted for delivery"


def sink_controller(directory: str | os.PathLike[str], *, host: str = "127.0.0.1", port: int = 2525) -> Controller:
    """An SMTP sink served from a thread of this process (``start()``/``stop()``); tests pass a free port."""
    kwargs: dict[str, Any] = {"hostname": host, "port": port}
    return Controller(EmlFolderHandler(directory), **kwargs)


def run_sink(directory: str, *, host: str, port: int) -> None:
    """Run the sink in the foreground until interrupted."""
    controller = sink_controller(directory, host=host, port=port)
    controller.start()
    print(f"SMTP sink on {host}:{port}, writing .eml files to {directory}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()
