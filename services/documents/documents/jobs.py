"""Handlers of the documents queue; the contracts are in :mod:`documents.contracts`.

A render runs in three steps. The document becomes PROCESSING in a short
transaction of its own, so pollers see it. The bytes are rendered outside
any transaction, in a bounded child process. The result, READY or FAILED,
commits with the job's own transaction, with the ledger event and the
notification. A job that runs again after its worker died finds the
document PROCESSING and renders it again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app

from documents import services
from documents.contracts import (
    CERTIFICATE_REQUEST,
    QUEUE,
    RENDER_DOCUMENT,
    CertificateRequest,
    RenderDocument,
)
from documents.db import db
from documents.models import LEDGER
from documents.pdf_process import RenderError
from documents.rendering import Fonts, PdfRenderer
from documents.sources import Sources
from edulink.errors import Conflict, NotFound
from edulink.jobs import JobContext, JobRegistry, PermanentJobError

log = logging.getLogger(__name__)

TOOLKIT_EXTENSION = "documents.toolkit"

registry = JobRegistry(QUEUE)
LEDGER.register_jobs(registry)


@dataclass
class Toolkit:
    """Source clients, fonts and renderer of one app, for its handlers and views."""

    sources: Sources
    renderer: PdfRenderer
    fonts: Fonts
    public_base_url: str


def toolkit() -> Toolkit:
    return current_app.extensions[TOOLKIT_EXTENSION]


@registry.handler(RENDER_DOCUMENT)
def render_document(payload: RenderDocument, context: JobContext) -> None:
    """Render one document and store it READY, or FAILED with the reason."""
    with db.transaction() as session:
        document = services.start_processing(session, document_id=payload.document_id)
    if document is None:
        return

    tools = toolkit()
    issued_at = datetime.now(UTC)
    started = time.perf_counter()
    try:
        content = services.produce(
            document,
            renderer=tools.renderer,
            fonts=tools.fonts,
            public_base_url=tools.public_base_url,
            issued_at=issued_at,
        )
    except RenderError as error:
        services.fail(context.session, document_id=document.id, reason=error.reason)
        return
    except Exception:
        if context.attempt <= RENDER_DOCUMENT.retry.max:
            raise
        log.exception("rendering document %s failed on its last attempt", document.id)
        services.fail(
            context.session,
            document_id=document.id,
            reason="Rendering failed because of an internal error.",
        )
        return

    services.complete(
        context.session,
        document_id=document.id,
        content=content,
        issued_at=issued_at,
        render_ms=round((time.perf_counter() - started) * 1000),
    )


@registry.handler(CERTIFICATE_REQUEST)
def request_certificate(payload: CertificateRequest, context: JobContext) -> None:
    """Issue the completion certificate of a newly CERTIFIED application.

    An unknown application or a missing student profile fails the job at
    once; an unreachable service raises, so the job is retried.
    """
    try:
        services.request_certificate_for_job(
            context.session,
            application_id=payload.application_id,
            sources=toolkit().sources,
            requested_by=context.actor or "internships",
        )
    except (NotFound, Conflict) as error:
        raise PermanentJobError(error.detail) from error
