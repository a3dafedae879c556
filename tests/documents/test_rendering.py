"""Rendering on its own: escaping, the URL fetcher, the render bounds, codes, CSV."""

from __future__ import annotations

import base64
import io
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import date

import pytest
from PIL import Image
from weasyprint.urls import URLFetcherResponse

from documents.codes import ALPHABET, CODE_PATTERN, new_tracking_code, normalize_code
from documents.models import DocumentKind
from documents.pdf_process import (
    MIB,
    BundledAssetFetcher,
    IsolatedRenderer,
    RejectedURL,
    RenderError,
    RenderInterrupted,
    RenderLimits,
)
from documents.rendering import (
    Fonts,
    Imprint,
    PdfRenderer,
    document_html,
    report_csv,
)
from documents.settings import DEFAULT_FONT_DIR
from tests.documents.helpers import Listener, hostile_markup, pdf_text

LIMITS = RenderLimits(timeout=30, memory_bytes=512 * MIB)
IMPRINT = Imprint("EDL-C-7KQ2ZD", date(2026, 12, 4), "https://edulink.test/verify/X")
PLACEMENT = {
    "application_id": "3c8e4b5e-4d4f-4bb0-9a55-0b8f1d0c6a11",
    "student": {
        "full_name": "Amina Njoroge",
        "registration_number": "KU/1",
        "course": None,
    },
    "institution": "Kilima University",
    "employer": "Savanna Labs",
    "position": "Backend engineering intern",
    "start_date": "2026-01-05",
    "end_date": "2026-04-05",
}


@pytest.fixture(scope="module")
def fonts() -> Fonts:
    return Fonts.from_dir(DEFAULT_FONT_DIR)


@pytest.fixture(scope="module")
def renderer(fonts: Fonts) -> IsolatedRenderer:
    return IsolatedRenderer(limits=LIMITS, assets=fonts.assets())


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    with Listener() as server:
        yield server


def test_renderer_satisfies_interface(renderer: IsolatedRenderer) -> None:
    assert isinstance(renderer, PdfRenderer)


def test_template_escapes_user_data(fonts: Fonts) -> None:
    snapshot = {
        **PLACEMENT,
        "student": {
            "full_name": 'Amina <img src="x"> & "Co"',
            "registration_number": None,
            "course": None,
        },
        "employer": "<script>alert(1)</script>",
    }
    html = document_html(
        DocumentKind.COMPLETION_CERTIFICATE,
        snapshot,
        title="Certificate",
        imprint=IMPRINT,
        fonts=fonts,
    )

    assert "Amina &lt;img src=&#34;x&#34;&gt; &amp; &#34;Co&#34;" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<img src="x">' not in html


def test_fetcher_serves_bundled_font(fonts: Fonts) -> None:
    url, path = next(iter(fonts.assets().items()))
    response = BundledAssetFetcher(fonts.assets()).fetch(url)

    assert isinstance(response, URLFetcherResponse)
    assert response.read() == path.read_bytes()


def test_fetcher_serves_data_uri(fonts: Fonts) -> None:
    response = BundledAssetFetcher(fonts.assets()).fetch("data:text/plain,hello")

    assert response.read() == b"hello"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x.png",
        "https://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
        "ftp://127.0.0.1/x",
        "FILE:///usr/share/fonts/truetype/dejavu/DejaVuSans.ttf?x",
    ],
)
def test_fetcher_rejects_other_urls(fonts: Fonts, url: str) -> None:
    fetcher = BundledAssetFetcher(fonts.assets())

    with pytest.raises(RejectedURL):
        fetcher.fetch(url)
    assert fetcher.rejected == [url]


def test_raw_markup_makes_no_request(
    renderer: IsolatedRenderer, listener: Listener
) -> None:
    url = listener.url
    html = (
        f'<html><head><link rel="stylesheet" href="{url}/a.css">'
        f"<style>@import url({url}/b.css); "
        f"@font-face {{ font-family: X; src: url({url}/f.ttf); }} "
        f"p {{ font-family: X; background: url({url}/c.png); }}</style></head>"
        f'<body><p>Hello</p><img src="{url}/d.png">{hostile_markup(url)}'
        f'<object data="{url}/e.svg"></object><svg><image href="{url}/g.png"/></svg>'
        f'<img src="file:///etc/passwd"></body></html>'
    )

    pdf = renderer.render(html, pdf_variant=None)

    assert "Hello" in pdf_text(pdf)
    assert listener.connections == 0


def test_render_over_time_limit_fails(fonts: Fonts) -> None:
    slow = IsolatedRenderer(
        limits=RenderLimits(timeout=0.5, memory_bytes=512 * MIB), assets=fonts.assets()
    )
    html = "<p>" + "word " * 400_000 + "</p>"

    with pytest.raises(RenderError, match=r"longer than the 0\.5 s limit"):
        slow.render(html, pdf_variant=None)
    # The killed render process is replaced by a new one.
    assert "After" in pdf_text(slow.render("<p>After</p>", pdf_variant=None))


def test_render_over_memory_limit_fails(fonts: Fonts) -> None:
    small = IsolatedRenderer(
        limits=RenderLimits(timeout=30, memory_bytes=64 * MIB), assets=fonts.assets()
    )
    # 8000 x 8000 black pixels: 190 kB as PNG, 192 MB once decoded.
    image = io.BytesIO()
    Image.new("RGB", (8000, 8000)).save(image, "PNG")
    encoded = base64.b64encode(image.getvalue()).decode()
    html = f'<img src="data:image/png;base64,{encoded}">'

    with pytest.raises(RenderError, match="memory"):
        small.render(html, pdf_variant=None)
    assert "After" in pdf_text(small.render("<p>After</p>", pdf_variant=None))


def test_layout_error_fails_one_render(renderer: IsolatedRenderer) -> None:
    # Deep nesting makes WeasyPrint's layout raise RecursionError.
    html = "<div>" * 3000 + "x" + "</div>" * 3000

    with pytest.raises(RenderError, match="RecursionError"):
        renderer.render(html, pdf_variant=None)
    pdf = renderer.render("<p>Still rendering</p>", pdf_variant=None)
    assert "Still rendering" in pdf_text(pdf)


def test_render_stopped_by_signal_is_retryable(fonts: Fonts) -> None:
    renderer = IsolatedRenderer(limits=LIMITS, assets=fonts.assets())
    before = {child.pid for child in multiprocessing.active_children()}
    outcome: dict[str, BaseException] = {}

    def render() -> None:
        try:
            renderer.render("<p>" + "word " * 400_000 + "</p>", pdf_variant=None)
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=render)
    thread.start()
    deadline = time.monotonic() + 20
    started: list[int] = []
    while not started and time.monotonic() < deadline:
        started = [
            child.pid
            for child in multiprocessing.active_children()
            if child.name == "documents-render" and child.pid not in before
        ]
        time.sleep(0.05)
    time.sleep(0.3)
    os.kill(started[0], signal.SIGTERM)
    thread.join(timeout=30)

    assert isinstance(outcome.get("error"), RenderInterrupted)


def test_tracking_codes_use_unambiguous_alphabet() -> None:
    codes = [new_tracking_code(DocumentKind.COMPLETION_CERTIFICATE) for _ in range(200)]

    assert all(CODE_PATTERN.match(code) for code in codes)
    assert all(code.startswith("EDL-C-") for code in codes)
    assert not set("01OIL") & set(ALPHABET)
    assert len(set(codes)) == len(codes)


def test_codes_normalize_as_typed() -> None:
    assert normalize_code(" edl c 7kq2zd ") == "EDL-C-7KQ2ZD"
    assert normalize_code("EDL-C-7KQ2Z0") is None
    assert normalize_code("EDL-X-7KQ2ZD") is None


def test_csv_neutralises_formulas() -> None:
    row = {
        "student_name": '=HYPERLINK("http://evil")',
        "registration_number": "+254",
        "course": "-x",
        "employer": "@SUM(A1)",
        "opportunity": "Intern",
        "status": "ACTIVE",
        "start_date": None,
        "end_date": None,
    }
    lines = report_csv({"placements": [row]}).decode().splitlines()

    assert lines[1].startswith("\"'=HYPERLINK")
    assert ",'+254,'-x,'@SUM(A1),Intern,ACTIVE,," in lines[1]
