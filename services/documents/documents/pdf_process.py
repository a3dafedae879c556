"""Render HTML to PDF in a child process with a time and memory bound.

Each render runs in a new process forked from a multiprocessing fork server,
which imported WeasyPrint and rendered one page at start
(:mod:`documents.pdf_warmup`), so a child starts with warm caches and
without the worker's threads and database connections. The child limits its
address space with ``RLIMIT_AS`` and its CPU time with ``RLIMIT_CPU``; the
parent kills it when the wall-clock timeout passes. A render that runs out of
either fails with :class:`RenderError` and the calling process goes on.

The child's URL fetcher serves ``data:`` URIs and the exact files it is
given, and refuses every other URL, so markup that slipped into a document
can make no network request and read no other file.
"""

from __future__ import annotations

import logging
import math
import mimetypes
import multiprocessing
import resource
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

log = logging.getLogger(__name__)

WARMUP_MODULE = "documents.pdf_warmup"
MIB = 1024 * 1024

# Font files are read once per process. The fork server reads them while
# warming up, so children inherit them.
_asset_bytes: dict[Path, bytes] = {}


class RenderError(Exception):
    """A render failed; ``reason`` says why in a sentence fit for the API."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RefusedURL(ValueError):
    """The fetcher refused a URL that is neither bundled nor a data: URI."""


class BundledAssetFetcher(URLFetcher):
    """WeasyPrint URL fetcher that serves ``data:`` URIs and listed files only."""

    def __init__(self, assets: Mapping[str, Path]) -> None:
        super().__init__(allowed_protocols=("data",), fail_on_errors=False)
        self._assets = dict(assets)
        self.refused: list[str] = []

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        if url[:5].lower() == "data:":
            return super().fetch(url, headers)

        path = self._assets.get(url)
        if path is None:
            self.refused.append(url[:200])
            raise RefusedURL(f"only bundled files and data: URIs load, not {url!r}")

        body = _asset_bytes.get(path)
        if body is None:
            body = _asset_bytes[path] = path.read_bytes()
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(url, body, {"Content-Type": media_type})


def render_pdf(
    html: str, *, assets: Mapping[str, Path], pdf_variant: str | None
) -> tuple[bytes, list[str]]:
    """Render in this process, with no bound. Returns the PDF and refused URLs."""
    fetcher = BundledAssetFetcher(assets)
    pdf = HTML(string=html, url_fetcher=fetcher).write_pdf(pdf_variant=pdf_variant)
    return pdf, fetcher.refused


@dataclass(frozen=True)
class RenderLimits:
    timeout: float
    memory_bytes: int


class IsolatedRenderer:
    """Renders each PDF in its own child process, within ``limits``.

    Thread-safe: each call forks its own child.
    """

    def __init__(self, *, limits: RenderLimits, assets: Mapping[str, Path]) -> None:
        self.limits = limits
        self.assets = dict(assets)
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload([WARMUP_MODULE])

    def render(self, html: str, *, pdf_variant: str | None) -> bytes:
        """Return the PDF of ``html``, or raise RenderError."""
        started = time.perf_counter()
        receiver, sender = self._context.Pipe(duplex=False)
        child = self._context.Process(
            target=_child_main,
            args=(sender, html, self.assets, pdf_variant, self.limits),
            name="documents-render",
            daemon=True,
        )
        child.start()
        sender.close()
        try:
            outcome = self._wait(child, receiver)
        finally:
            receiver.close()
            child.join(timeout=5)

        status, payload, refused = outcome
        if refused:
            log.warning(
                "the render refused %d URLs outside the bundled assets: %s",
                len(refused),
                ", ".join(refused[:5]),
            )
        if status != "ok":
            raise RenderError(payload)
        log.debug("rendered a PDF in %.0f ms", (time.perf_counter() - started) * 1000)
        return payload

    def _wait(
        self, child: multiprocessing.process.BaseProcess, receiver: Connection
    ) -> tuple[str, Any, list[str]]:
        if not receiver.poll(self.limits.timeout):
            child.kill()
            return (
                "error",
                f"Rendering took longer than the {self.limits.timeout:g} s limit.",
                [],
            )
        try:
            return receiver.recv()
        except EOFError:
            child.join(timeout=5)
            return ("error", _describe_exit(child.exitcode), [])


def _describe_exit(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        if -exitcode == signal.SIGXCPU:
            return "Rendering used more CPU time than its limit allows."
        return (
            f"The render process was ended by {name}, which usually means the "
            "document needs more memory than the render limit allows."
        )
    return f"The render process exited with status {exitcode} without a result."


def _child_main(
    sender: Connection,
    html: str,
    assets: Mapping[str, Path],
    pdf_variant: str | None,
    limits: RenderLimits,
) -> None:
    """Body of the child: apply the limits, render, send the outcome, exit."""
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    _limit_resources(limits)
    try:
        pdf, refused = render_pdf(html, assets=assets, pdf_variant=pdf_variant)
        outcome: tuple[str, Any, list[str]] = ("ok", pdf, refused)
    except MemoryError:
        outcome = (
            "error",
            f"Rendering needed more than the {limits.memory_bytes // MIB} MiB "
            "memory limit.",
            [],
        )
    except Exception as error:
        outcome = ("error", f"Rendering failed: {type(error).__name__}: {error}", [])
    sender.send(outcome)
    sender.close()


def _limit_resources(limits: RenderLimits) -> None:
    """Cap the address space at its current size plus the memory limit, and CPU time."""
    in_use = _address_space_bytes()
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = in_use + limits.memory_bytes
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))

    cpu_seconds = math.ceil(limits.timeout) + 1
    _soft, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
    if cpu_hard != resource.RLIM_INFINITY:
        cpu_seconds = min(cpu_seconds, cpu_hard)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_hard))


def _address_space_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmSize is missing from /proc/self/status")
