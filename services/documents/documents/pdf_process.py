"""Render HTML to PDF in child processes with a time and memory bound.

Renders run in long-lived render processes, one per concurrent caller, each
started from a multiprocessing fork server. The fork server imported
WeasyPrint and rendered one page at start (:mod:`documents.pdf_warmup`), so
a render process starts with warm caches and without the worker's threads
and database connections.

Bounds:

* memory: a render process caps its address space (``RLIMIT_AS``) at its
  size after start plus ``memory_bytes``. A render that reaches the cap fails
  with MemoryError, or the process dies; either way the render fails and the
  process is replaced. A process that has grown by more than half the budget
  after a render is replaced too, so every render has at least half of it.
* time: the caller kills the render process when ``timeout`` passes.

A render that fails raises :class:`RenderError` and the caller goes on; the
next render gets a fresh process. Reusing processes instead of forking one
per render saves the fork and the copy-on-write faults of a fresh child,
which cost about as much as the render itself (see BENCHMARKS.md).

The URL fetcher serves ``data:`` URIs and the exact files it is given, and
rejects every other URL, so markup that slipped into a document can make no
network request and read no other file.
"""

from __future__ import annotations

import logging
import mimetypes
import multiprocessing
import resource
import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

log = logging.getLogger(__name__)

WARMUP_MODULE = "documents.pdf_warmup"
# Signals that stop render processes from outside, as a shutdown of the
# worker's process group does.
SHUTDOWN_SIGNALS = frozenset({signal.SIGTERM, signal.SIGHUP})
MIB = 1024 * 1024
STOP = None

# Font files are read once per process. The fork server reads them while
# warming up, so render processes inherit them.
_asset_bytes: dict[Path, bytes] = {}


class RenderError(Exception):
    """A render failed; ``reason`` explains the failure in one sentence for clients."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RenderInterrupted(RuntimeError):
    """A signal from outside, such as a shutdown, ended the render process.

    Unlike :class:`RenderError` the document is not at fault, so the render is
    worth running again.
    """


class RejectedURL(ValueError):
    """The fetcher rejected a URL that is neither bundled nor a data: URI."""


class BundledAssetFetcher(URLFetcher):
    """WeasyPrint URL fetcher that serves ``data:`` URIs and listed files only."""

    def __init__(self, assets: Mapping[str, Path]) -> None:
        super().__init__(allowed_protocols=("data",), fail_on_errors=False)
        self._assets = dict(assets)
        self.rejected: list[str] = []

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        if url[:5].lower() == "data:":
            return super().fetch(url, headers)

        path = self._assets.get(url)
        if path is None:
            self.rejected.append(url[:200])
            raise RejectedURL(f"only bundled files and data: URIs load, not {url!r}")

        body = _asset_bytes.get(path)
        if body is None:
            body = _asset_bytes[path] = path.read_bytes()
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(url, body, {"Content-Type": media_type})


def render_pdf(
    html: str, *, assets: Mapping[str, Path], pdf_variant: str | None
) -> tuple[bytes, list[str]]:
    """Render in this process, with no bound. Returns the PDF and rejected URLs."""
    fetcher = BundledAssetFetcher(assets)
    pdf = HTML(string=html, url_fetcher=fetcher).write_pdf(pdf_variant=pdf_variant)
    return pdf, fetcher.rejected


@dataclass(frozen=True)
class RenderLimits:
    timeout: float
    memory_bytes: int


class IsolatedRenderer:
    """Renders PDFs in bounded render processes, within ``limits``.

    Thread-safe: each call takes an idle render process, or starts one.
    """

    def __init__(self, *, limits: RenderLimits, assets: Mapping[str, Path]) -> None:
        self.limits = limits
        self.assets = dict(assets)
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload([WARMUP_MODULE])
        self._idle: list[_RenderProcess] = []
        self._lock = threading.Lock()

    def render(self, html: str, *, pdf_variant: str | None) -> bytes:
        """Return the PDF of ``html``, or raise RenderError."""
        process = self._take()
        try:
            status, payload, rejected = process.render(
                html, pdf_variant, self.limits.timeout
            )
        finally:
            self._give_back(process)

        if rejected:
            log.warning(
                "the render rejected %d URLs outside the bundled assets: %s",
                len(rejected),
                ", ".join(rejected[:5]),
            )
        if status == "interrupted":
            raise RenderInterrupted(payload)
        if status != "ok":
            raise RenderError(payload)
        return payload

    def close(self) -> None:
        """Stop the idle render processes."""
        with self._lock:
            idle, self._idle = self._idle, []
        for process in idle:
            process.stop()

    def _take(self) -> _RenderProcess:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return _RenderProcess(self._context, self.assets, self.limits)

    def _give_back(self, process: _RenderProcess) -> None:
        if not process.usable:
            process.stop()
            return
        with self._lock:
            self._idle.append(process)


class _RenderProcess:
    """One render process and the pipe to it; used by one thread at a time."""

    def __init__(
        self,
        context: Any,
        assets: Mapping[str, Path],
        limits: RenderLimits,
    ) -> None:
        self.connection, child_end = context.Pipe()
        self.process: BaseProcess = context.Process(
            target=_serve,
            args=(child_end, assets, limits.memory_bytes),
            name="documents-render",
            daemon=True,
        )
        self.process.start()
        child_end.close()
        self.usable = True

    def render(
        self, html: str, pdf_variant: str | None, timeout: float
    ) -> tuple[str, Any, list[str]]:
        """Send one render and wait up to ``timeout`` seconds for its outcome."""
        self.connection.send((html, pdf_variant))
        if not self.connection.poll(timeout):
            self.usable = False
            self.process.kill()
            return ("error", f"Rendering took longer than the {timeout:g} s limit.", [])
        try:
            status, payload, rejected, keep_going = self.connection.recv()
        except EOFError:
            self.usable = False
            self.process.join(timeout=5)
            return _describe_exit(self.process.exitcode)
        self.usable = keep_going
        return status, payload, rejected

    def stop(self) -> None:
        if self.process.is_alive():
            try:
                self.connection.send(STOP)
            except OSError:
                self.process.kill()
            self.process.join(timeout=5)
            if self.process.is_alive():
                self.process.kill()
        self.connection.close()


def _describe_exit(exitcode: int | None) -> tuple[str, str, list[str]]:
    """Explain why a render process ended without replying."""
    if exitcode is not None and -exitcode in SHUTDOWN_SIGNALS:
        name = signal.Signals(-exitcode).name
        return ("interrupted", f"The render process was stopped by {name}.", [])
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        reason = (
            f"The render process was ended by {name}, which usually means the "
            "document needs more memory than the render limit allows."
        )
        return ("error", reason, [])
    reason = f"The render process exited with status {exitcode} without a result."
    return ("error", reason, [])


def _serve(connection: Connection, assets: Mapping[str, Path], budget: int) -> None:
    """Run a render process: cap its memory, then render until it receives STOP.

    Each reply is ``(status, payload, rejected_urls, keep_going)``. After a
    MemoryError, or once the process has grown by half the budget, it
    replies with ``keep_going`` false and exits.
    """
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    # Ctrl-C reaches the whole process group. The worker drains its running
    # jobs on SIGINT, so the render in progress must finish too.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    baseline = _address_space_bytes()
    _cap_address_space(baseline + budget)
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            # The parent exited or dropped this process.
            return
        if request is STOP:
            return
        html, pdf_variant = request
        try:
            pdf, rejected = render_pdf(html, assets=assets, pdf_variant=pdf_variant)
        except MemoryError:
            reason = f"Rendering needed more than the {budget // MIB} MiB memory limit."
            connection.send(("error", reason, [], False))
            return
        except Exception as error:
            reason = f"Rendering failed: {type(error).__name__}: {error}"
            connection.send(("error", reason, [], True))
            continue
        grown = _address_space_bytes() - baseline
        keep_going = grown < budget // 2
        connection.send(("ok", pdf, rejected, keep_going))
        if not keep_going:
            return


def _cap_address_space(limit: int) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _address_space_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmSize is missing from /proc/self/status")
