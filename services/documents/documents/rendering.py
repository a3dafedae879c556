"""Turn a document's snapshot into HTML, then into PDF or CSV bytes.

HTML comes from Jinja2 templates with autoescaping on, so user data such as
names and cover letters is always text, never markup. WeasyPrint then lays
the HTML out in a child process (:mod:`documents.pdf_process`) whose URL
fetcher serves only the bundled fonts and ``data:`` URIs.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import segno
from jinja2 import Environment, PackageLoader, StrictUndefined
from weasyprint.urls import path2url

from documents.models import DocumentFormat, DocumentKind

# The fonts every template uses, by role, from Debian's fonts-dejavu-core.
FONT_FILES = {
    "sans": "DejaVuSans.ttf",
    "sans_bold": "DejaVuSans-Bold.ttf",
    "serif_bold": "DejaVuSerif-Bold.ttf",
}

TEMPLATES = {
    DocumentKind.PLACEMENT_LETTER: "placement_letter.html",
    DocumentKind.COMPLETION_CERTIFICATE: "completion_certificate.html",
    DocumentKind.PERFORMANCE_SUMMARY: "performance_summary.html",
    DocumentKind.PLACEMENT_REPORT: "placement_report.html",
}

# Certificates are archived, so they are PDF/A-3u: fonts embedded, colours
# tied to an ICC profile, every glyph mapped to Unicode.
PDF_VARIANTS = {DocumentKind.COMPLETION_CERTIFICATE: "pdf/a-3u"}

MEDIA_TYPES = {DocumentFormat.PDF: "application/pdf", DocumentFormat.CSV: "text/csv"}

REPORT_COLUMNS = (
    ("student_name", "Student"),
    ("registration_number", "Registration number"),
    ("course", "Course"),
    ("employer", "Employer"),
    ("opportunity", "Position"),
    ("status", "Status"),
    ("start_date", "Start date"),
    ("end_date", "End date"),
)

# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@runtime_checkable
class PdfRenderer(Protocol):
    """Lays out HTML as PDF; raises ``documents.pdf_process.RenderError`` on failure."""

    def render(self, html: str, *, pdf_variant: str | None) -> bytes: ...


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class MissingFontError(RuntimeError):
    """A bundled font file is missing, so no PDF can be rendered."""


@dataclass(frozen=True)
class Fonts:
    """The font files templates may use, as the ``file:`` URLs the fetcher serves."""

    paths: dict[str, Path]

    @classmethod
    def from_dir(cls, font_dir: Path) -> Fonts:
        """Find the fonts in ``font_dir``, or raise MissingFontError naming the file."""
        paths = {role: font_dir / name for role, name in FONT_FILES.items()}
        for path in paths.values():
            if not path.is_file():
                raise MissingFontError(
                    f"font file {path} is missing: install Debian's fonts-dejavu-core "
                    "or set FONT_DIR to a folder that has it"
                )
        return cls({role: path.resolve() for role, path in paths.items()})

    @property
    def urls(self) -> dict[str, str]:
        return {role: path2url(str(path)) for role, path in self.paths.items()}

    def assets(self) -> dict[str, Path]:
        """Return the fetchable files by URL: the only files a render may read."""
        return {path2url(str(path)): path for path in self.paths.values()}


@dataclass(frozen=True)
class Imprint:
    """Identity of an issued copy: its code, issue date and verification address."""

    tracking_code: str
    issued_on: date
    verification_url: str


def verification_url(public_base_url: str, tracking_code: str) -> str:
    return f"{public_base_url.rstrip('/')}/verify/{tracking_code}"


def qr_data_uri(url: str) -> str:
    """Return a QR code of ``url`` as an SVG ``data:`` URI, made locally."""
    return segno.make(url, error="m", micro=False).svg_data_uri(scale=4, border=2)


def long_date(value: str | date | None) -> str:
    """Format an ISO date as ``4 December 2026``; an empty value as a dash."""
    if not value:
        return "\N{EN DASH}"
    day = date.fromisoformat(value) if isinstance(value, str) else value
    return f"{day.day} {day:%B %Y}"


def weeks_between(start: str | None, end: str | None) -> int | None:
    """Return the whole weeks from ``start`` to ``end`` inclusive, or None."""
    if not (start and end):
        return None
    days = (date.fromisoformat(end) - date.fromisoformat(start)).days + 1
    return max(1, round(days / 7))


def common_skills(required: list[str], listed: list[str]) -> list[str]:
    """Return the skills in ``required`` that ``listed`` contains too, ignoring case."""
    listed_folded = {skill.casefold() for skill in listed}
    return [skill for skill in required if skill.casefold() in listed_folded]


def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("documents", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["long_date"] = long_date
    environment.globals["weeks_between"] = weeks_between
    environment.globals["common_skills"] = common_skills
    return environment


_ENVIRONMENT = _environment()


def document_html(
    kind: DocumentKind,
    snapshot: dict[str, Any],
    *,
    title: str,
    imprint: Imprint,
    fonts: Fonts,
) -> str:
    """Fill the kind's template with the snapshot and the copy's imprint."""
    template = _ENVIRONMENT.get_template(TEMPLATES[kind])
    return template.render(
        data=snapshot,
        title=title,
        imprint=imprint,
        qr_code=qr_data_uri(imprint.verification_url),
        fonts=fonts.urls,
    )


def report_csv(snapshot: dict[str, Any]) -> bytes:
    """Write the report's placements as CSV, one header row and one row each.

    Cells a spreadsheet would run as formulas get a leading apostrophe.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([heading for _key, heading in REPORT_COLUMNS])
    for row in snapshot["placements"]:
        writer.writerow([_safe_cell(row.get(key)) for key, _heading in REPORT_COLUMNS])
    return buffer.getvalue().encode("utf-8")


def _safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text
