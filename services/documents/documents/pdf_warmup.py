"""Warm WeasyPrint up in the render fork server; importing this module renders once.

:class:`documents.pdf_process.IsolatedRenderer` names this module as the
fork server's preload, so Pango, fontconfig and the bundled fonts are loaded
once there and every render child inherits them. Nothing else imports it.
"""

from __future__ import annotations

import gc
import logging

from documents.pdf_process import render_pdf
from documents.rendering import Fonts, MissingFontError
from documents.settings import DEFAULT_FONT_DIR

log = logging.getLogger(__name__)

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>warm-up</title><style>
@font-face {{ font-family: "Edulink Sans"; src: url("{sans}"); }}
@font-face {{ font-family: "Edulink Sans"; font-weight: bold; src: url("{bold}"); }}
@font-face {{ font-family: "Edulink Serif"; font-weight: bold; src: url("{serif}"); }}
body {{ font-family: "Edulink Sans"; }} h1 {{ font-family: "Edulink Serif"; }}
</style></head><body><h1>Warm-up</h1><p><b>Edulink</b> ÄÖÜ</p></body></html>"""


def _warm_up() -> None:
    try:
        fonts = Fonts.from_dir(DEFAULT_FONT_DIR)
    except MissingFontError as error:
        log.warning("render warm-up skipped: %s", error)
        return
    urls = fonts.urls
    html = _PAGE.format(
        sans=urls["sans"], bold=urls["sans_bold"], serif=urls["serif_bold"]
    )
    try:
        render_pdf(html, assets=fonts.assets(), pdf_variant="pdf/a-3u")
    except Exception:
        log.exception("render warm-up failed")


_warm_up()
# Render processes fork from here. Freezing moves everything loaded so far out
# of the collector's reach, so their collections do not write to, and copy,
# the pages they share with this process.
gc.freeze()
