"""Tracking codes such as ``EDL-C-7KQ2ZD``, printed on documents and typed by people.

The alphabet leaves out 0, O, 1, I and L, which readers confuse, so a code
read off paper is typed back correctly. Six random characters give 31**6,
about 8.9e8, codes per kind; the database's unique constraint catches the
rare collision and the caller draws again.
"""

from __future__ import annotations

import re
import secrets

from documents.models import DocumentKind

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
RANDOM_LENGTH = 6
PREFIX = "EDL"

KIND_LETTERS = {
    DocumentKind.PLACEMENT_LETTER: "L",
    DocumentKind.COMPLETION_CERTIFICATE: "C",
    DocumentKind.PERFORMANCE_SUMMARY: "S",
    DocumentKind.PLACEMENT_REPORT: "R",
}

CODE_PATTERN = re.compile(
    rf"^{PREFIX}-[{''.join(KIND_LETTERS.values())}]-[{ALPHABET}]{{{RANDOM_LENGTH}}}$"
)


def new_tracking_code(kind: DocumentKind) -> str:
    """Draw a random code for a document of ``kind``."""
    random_part = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return f"{PREFIX}-{KIND_LETTERS[kind]}-{random_part}"


def normalize_code(text: str) -> str | None:
    """Return ``text`` as a well-formed code, or None.

    Case, surrounding spaces and spaces in place of dashes are forgiven,
    because people type codes off paper.
    """
    candidate = "-".join(text.strip().upper().replace("-", " ").split())
    if CODE_PATTERN.match(candidate):
        return candidate
    return None
