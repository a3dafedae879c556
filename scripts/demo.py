"""Walk one placement through Edulink as real clients would, via the gateway.

It talks to a running ``make up`` only through nginx (``EDULINK_URL``,
default http://127.0.0.1:8080), the development Pusher server's WebSocket
and the SMTP sink's ``.eml`` files. A student signs up, verifies the email,
builds a profile and is affiliated. An employer admin and an institution
admin join by invitation. The student applies, and the placement goes from
SHORTLISTED to CERTIFIED. The certificate is downloaded and verified by its
bytes, a support ticket is answered and a platform alert reaches everyone.

Each step prints its time; the first failure names the step and the HTTP
status and body, and the exit status is 1.

Settings (environment): ``EDULINK_URL``; ``EDULINK_WS_URL`` (default
ws://127.0.0.1:6001) and ``EDULINK_PUSHER_KEY`` (default edulink-dev), the
development Pusher server of ``make up``; ``EDULINK_MAIL_DIR`` (default
var/mail); ``EDULINK_ENV_FILE`` (default var/dev/local.env), the settings
used to create the system admin with the gateway CLI when signing in as
``EDULINK_ADMIN_EMAIL`` with ``EDULINK_ADMIN_PASSWORD`` fails.

Usage: ``make demo`` (or ``.venv/bin/python scripts/demo.py``).
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import os
import re
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from notifications.pusher_server.client import Message, PusherTestClient

ROOT = Path(__file__).resolve().parent.parent
REQUEST_TIMEOUT = 15.0
# How long to wait for a worker's work: an email, an event, a document.
WORKER_TIMEOUT = 60.0
POLL_INTERVAL = 0.25
# A 429 whose Retry-After is longer than this fails the step instead.
MAX_RETRY_AFTER = 65
PASSWORD = "demo-password-" + secrets.token_hex(4)
# The student hears of every status the application takes, APPLIED included.
EXPECTED_STATUSES = ["applied", "shortlisted", "accepted", "active", "completed"]
EXPECTED_STATUSES += ["certified"]
# The system admin that `make up` seeds with the demo data, when it does.
SEEDED_ADMIN = ("sysadmin@edulink-demo.org", "edulink-demo-2026")
TOKEN_IN_LINK = re.compile(r"[?&]token=([A-Za-z0-9_.~%-]+)")


class DemoError(Exception):
    """A failed step. The message names the expected result and the actual one."""


@dataclass(frozen=True)
class Settings:
    url: str
    ws_url: str
    pusher_key: str
    mail_dir: Path
    env_file: Path
    admin_email: str
    admin_password: str

    @classmethod
    def from_environment(cls) -> Settings:
        env = os.environ
        return cls(
            url=env.get("EDULINK_URL", "http://127.0.0.1:8080").rstrip("/"),
            ws_url=env.get("EDULINK_WS_URL", "ws://127.0.0.1:6001"),
            pusher_key=env.get("EDULINK_PUSHER_KEY", "edulink-dev"),
            mail_dir=Path(env.get("EDULINK_MAIL_DIR", ROOT / "var" / "mail")),
            env_file=Path(
                env.get("EDULINK_ENV_FILE", ROOT / "var" / "dev" / "local.env")
            ),
            admin_email=env.get("EDULINK_ADMIN_EMAIL", "demo-admin@edulink.example"),
            admin_password=env.get("EDULINK_ADMIN_PASSWORD", "demo-admin-password"),
        )


@dataclass
class Client:
    """HTTP calls through the gateway; a non-matching status raises DemoError."""

    base: str
    http: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        # Loopback only: proxy variables in the environment must not reroute us.
        self.http.trust_env = False

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        expect: tuple[int, ...] = (200, 201),
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        response = self.http.request(
            method, self.base + path, headers=sent, timeout=REQUEST_TIMEOUT, **kwargs
        )
        wait = _retry_after(response)
        if wait is not None and response.status_code not in expect:
            # Runs of the demo in a row share the per-IP sign-in limit.
            print(f"{'':>18}rate-limited on {path}; retrying in {wait} s", flush=True)
            time.sleep(wait)
            response = self.http.request(
                method,
                self.base + path,
                headers=sent,
                timeout=REQUEST_TIMEOUT,
                **kwargs,
            )
        if response.status_code not in expect:
            raise DemoError(
                f"{method} {path} returned {response.status_code}, expected "
                f"{' or '.join(map(str, expect))}: {response.text[:2000]}"
            )
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.call(method, path, **kwargs).json()


def _retry_after(response: requests.Response) -> int | None:
    """Seconds to wait before retrying a 429, if short enough to wait for."""
    if response.status_code != 429:
        return None
    try:
        seconds = int(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return seconds + 1 if seconds <= MAX_RETRY_AFTER else None


def wait_until(what: str, probe: Callable[[], Any], timeout: float) -> Any:
    """Return ``probe()``'s first truthy value; DemoError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DemoError(f"{what}: nothing after {timeout:.0f} s")
        time.sleep(POLL_INTERVAL)


@dataclass
class Mailbox:
    """Reads the SMTP sink's ``.eml`` files."""

    directory: Path

    def messages_to(self, address: str) -> list[email.message.EmailMessage]:
        found = []
        if not self.directory.is_dir():
            return found
        for path in sorted(self.directory.glob("*.eml")):
            message = email.message_from_bytes(
                path.read_bytes(), policy=email.policy.default
            )
            if address.lower() in str(message.get("To", "")).lower():
                found.append(message)
        return found

    def wait_for(
        self, address: str, subject_has: str = "", count: int = 1
    ) -> list[email.message.EmailMessage]:
        def matching() -> list[email.message.EmailMessage]:
            messages = [
                message
                for message in self.messages_to(address)
                if subject_has.lower() in str(message["Subject"]).lower()
            ]
            return messages if len(messages) >= count else []

        return wait_until(
            f"email to {address} ({subject_has or 'any subject'}) in {self.directory}",
            matching,
            WORKER_TIMEOUT,
        )

    def token_for(self, address: str, subject_has: str) -> str:
        message = self.wait_for(address, subject_has)[-1]
        body = message.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        match = TOKEN_IN_LINK.search(text)
        if match is None:
            raise DemoError(f"no ?token= link in the email to {address}: {text}")
        return requests.utils.unquote(match.group(1))


@dataclass
class Journey:
    settings: Settings
    api: Client
    mail: Mailbox
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    started: float = field(default_factory=time.monotonic)
    state: dict[str, Any] = field(default_factory=dict)

    # Helpers

    def address(self, who: str, domain: str | None = None) -> str:
        return f"{who}-{self.tag}@{domain or 'demo.edulink.example'}"

    def login(self, address: str, password: str = PASSWORD) -> str:
        body = self.api.json(
            "POST",
            "/api/v1/auth/login",
            json={"email": address, "password": password},
        )
        return body["access_token"]

    def invite(self, role: str, org_ids: list[str], name: str) -> str:
        """Invite a staff member as the system admin, accept, and sign in."""
        address = self.address(role.replace("_", "-"))
        self.api.call(
            "POST",
            "/api/v1/accounts/invitations",
            token=self.state["admin"],
            json={"email": address, "role": role, "org_ids": org_ids},
        )
        token = self.mail.token_for(address, "")
        self.api.call(
            "POST",
            "/api/v1/accounts/invitations/accept",
            json={"token": token, "name": name, "password": PASSWORD},
        )
        return self.login(address)

    def move(self, token: str, to: str, **extra: str) -> dict[str, Any]:
        """Move the application to ``to`` with the ETag it has now."""
        path = f"/api/v1/applications/{self.state['application_id']}"
        etag = self.api.call("GET", path, token=token).headers["ETag"]
        moved = self.api.json(
            "POST",
            f"{path}/transitions",
            token=token,
            headers={"If-Match": etag},
            json={"to": to, **extra},
        )
        if moved["status"] != to:
            raise DemoError(f"the application is {moved['status']}, not {to}")
        return moved

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        began = time.monotonic()
        clock = datetime.now(UTC).strftime("%H:%M:%S")
        print(f"{clock} +{began - self.started:5.1f}s  {title} ...", flush=True)
        try:
            yield
        except DemoError as error:
            raise DemoError(f"step '{title}' failed: {error}") from None
        except requests.ConnectionError as error:
            raise DemoError(
                f"step '{title}' failed: could not connect to {self.settings.url}"
                f" (is `make up` running?): {error}"
            ) from None
        except (requests.RequestException, TimeoutError, ConnectionError) as error:
            raise DemoError(f"step '{title}' failed: {error!r}") from None
        print(f"{'':>18}ok ({time.monotonic() - began:.1f} s)", flush=True)

    # Steps

    def admin_signs_in(self) -> None:
        """Sign in as the seeded admin, else as the demo's own, created if need be."""
        settings = self.settings
        for address, password in (
            SEEDED_ADMIN,
            (settings.admin_email, settings.admin_password),
        ):
            try:
                self.state["admin"] = self.login(address, password)
            except DemoError as error:
                if " 401" not in str(error):
                    raise
                continue
            print(f"{'':>18}signed in as {address}")
            return
        create_admin(settings)
        self.state["admin"] = self.login(settings.admin_email, settings.admin_password)

    def organisations_exist(self) -> None:
        admin = self.state["admin"]
        domain = f"uni-{self.tag}.example"
        institution = self.api.json(
            "POST",
            "/api/v1/institutions",
            token=admin,
            json={
                "name": f"Demo University {self.tag}",
                "email_domains": [domain],
                "status": "active",
            },
        )
        employer = self.api.json(
            "POST",
            "/api/v1/employers",
            token=admin,
            json={
                "name": f"Demo Works {self.tag}",
                "contact_email": self.address("contact"),
                "status": "approved",
            },
        )
        self.state.update(
            domain=domain, institution_id=institution["id"], employer_id=employer["id"]
        )

    def staff_join(self) -> None:
        self.state["employer"] = self.invite(
            "employer_admin", [self.state["employer_id"]], "Erin Employer"
        )
        self.state["institution"] = self.invite(
            "institution_admin", [self.state["institution_id"]], "Ian Registrar"
        )
        self.state["support"] = self.invite("support_staff", [], "Sam Support")

    def opportunity_opens(self) -> None:
        employer = self.state["employer"]
        today = date.today()
        created = self.api.json(
            "POST",
            "/api/v1/opportunities",
            token=employer,
            json={
                "employer_id": self.state["employer_id"],
                "title": "Backend engineering intern",
                "description": "Build and test small Flask services with the team.",
                "skills": ["python", "sql"],
                "location": "Nairobi",
                "location_type": "hybrid",
                "capacity": 2,
                "start_date": (today + timedelta(days=14)).isoformat(),
                "end_date": (today + timedelta(days=104)).isoformat(),
                "deadline": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
            },
        )
        path = f"/api/v1/opportunities/{created['id']}"
        etag = self.api.call("GET", path, token=employer).headers["ETag"]
        opened = self.api.json(
            "PATCH",
            path,
            token=employer,
            headers={"If-Match": etag},
            json={"status": "OPEN"},
        )
        if opened["status"] != "OPEN":
            raise DemoError(f"the opportunity is {opened['status']}, not OPEN")
        self.state["opportunity_id"] = created["id"]

    def student_registers(self) -> None:
        address = self.address("student", self.state["domain"])
        self.api.call(
            "POST",
            "/api/v1/accounts",
            json={"email": address, "password": PASSWORD, "name": "Amina Student"},
        )
        token = self.mail.token_for(address, "")
        self.api.call("POST", "/api/v1/accounts/verify-email", json={"token": token})
        self.state["student_email"] = address
        self.state["student"] = self.login(address)
        account = self.api.json(
            "GET", "/api/v1/accounts/me", token=self.state["student"]
        )
        if not account["email_verified"]:
            raise DemoError(f"the account is not verified: {account}")
        self.state["student_user_id"] = account["id"]

    def student_listens(self) -> None:
        """Open the student's WebSocket: their user channel and the alerts."""
        student = self.state["student"]

        def authorize(socket_id: str, channel: str) -> str:
            return self.api.json(
                "POST",
                "/api/v1/realtime/auth",
                token=student,
                data={"socket_id": socket_id, "channel_name": channel},
            )["auth"]

        client = PusherTestClient(
            self.settings.ws_url, self.settings.pusher_key, authorizer=authorize
        )
        client.connect()
        self.state["socket"] = client
        for channel in (
            f"private-user-{self.state['student_user_id']}",
            "platform-alerts",
        ):
            reply = client.subscribe(channel)
            if reply.event != "pusher_internal:subscription_succeeded":
                raise DemoError(f"subscribing to {channel}: {reply.data}")

    def student_is_affiliated(self) -> None:
        student = self.state["student"]
        self.api.call(
            "POST",
            "/api/v1/students/me",
            token=student,
            json={"full_name": "Amina Student", "course": "Computer Science"},
        )
        etag = self.api.call("GET", "/api/v1/students/me", token=student).headers[
            "ETag"
        ]
        self.api.call(
            "PATCH",
            "/api/v1/students/me",
            token=student,
            headers={"If-Match": etag},
            json={
                "registration_number": f"CS-{self.tag}",
                "year_of_study": 3,
                "skills": ["python", "sql"],
            },
        )
        claim = self.api.json(
            "POST",
            "/api/v1/students/me/claims",
            token=student,
            json={"institution_id": self.state["institution_id"]},
        )
        if claim["status"] != "approved":
            raise DemoError(f"the claim is {claim['status']}, not approved: {claim}")
        profile = self.api.json("GET", "/api/v1/students/me", token=student)
        if profile["institution_id"] != self.state["institution_id"]:
            raise DemoError(f"the profile names no institution: {profile}")

    def student_applies(self) -> None:
        application = self.api.json(
            "POST",
            f"/api/v1/opportunities/{self.state['opportunity_id']}/applications",
            token=self.state["student"],
            headers={"Idempotency-Key": str(uuid.uuid4())},
            json={"cover_letter": "I enjoy building reliable services."},
        )
        if application["status"] != "APPLIED":
            raise DemoError(f"the application is {application['status']}")
        self.state["application_id"] = application["id"]

    def placement_runs(self) -> None:
        employer = self.state["employer"]
        self.move(employer, "SHORTLISTED")
        self.move(employer, "ACCEPTED")
        today = date.today()
        active = self.move(
            employer,
            "ACTIVE",
            start_date=today.isoformat(),
            end_date=(today + timedelta(days=90)).isoformat(),
        )
        if not (active["start_date"] and active["end_date"]):
            raise DemoError(f"the ACTIVE placement has no dates: {active}")
        self.move(employer, "COMPLETED")
        self.move(self.state["institution"], "CERTIFIED")

    def certificate_verifies(self) -> None:
        student = self.state["student"]
        query = (
            f"/api/v1/documents?application_id={self.state['application_id']}"
            "&kind=completion_certificate"
        )

        def ready() -> dict[str, Any] | None:
            items = self.api.json("GET", query, token=student)["items"]
            failed = [item for item in items if item["status"] == "FAILED"]
            if failed:
                raise DemoError(f"the certificate failed: {failed[0]}")
            return next((item for item in items if item["status"] == "READY"), None)

        document = wait_until("a READY certificate", ready, WORKER_TIMEOUT)
        content = self.api.call(
            "GET", f"/api/v1/documents/{document['id']}/content", token=student
        ).content
        if not content.startswith(b"%PDF-"):
            raise DemoError(f"the certificate is not a PDF: {content[:40]!r}")
        verdict = self.verify(content)
        if not (verdict["match"] and verdict["valid"]):
            raise DemoError(f"the downloaded certificate does not verify: {verdict}")
        code = verdict["document"]["tracking_code"]
        print(f"{'':>18}{code}: {len(content)} bytes, valid")
        changed = bytearray(content)
        changed[len(changed) // 2] ^= 0x01
        verdict = self.verify(bytes(changed))
        if verdict["match"] or verdict["valid"]:
            raise DemoError(f"a certificate with one changed byte verifies: {verdict}")
        print(f"{'':>18}one changed byte: no match")

    def verify(self, content: bytes) -> dict[str, Any]:
        """Upload ``content`` to the public verification endpoint, signed out."""
        return self.api.json(
            "POST",
            "/api/v1/verify",
            files={"file": ("certificate.pdf", content, "application/pdf")},
            expect=(200,),
        )

    def student_saw_each_status(self) -> None:
        socket: PusherTestClient = self.state["socket"]
        application_id = self.state["application_id"]

        def titles() -> list[str]:
            seen = [
                message.data["notification"]["title"]
                for message in list(socket.messages)
                if _is_notification_about(message, application_id)
            ]
            missing = [s for s in EXPECTED_STATUSES if not _any_names(seen, s)]
            return seen if not missing else []

        seen = wait_until(
            "a notification.created event per status of the application",
            titles,
            WORKER_TIMEOUT,
        )
        for title in seen:
            print(f"{'':>18}event: {title}")

    def emails_arrived(self) -> None:
        student = self.state["student_email"]
        # The verification email, the affiliation and one per status.
        messages = self.mail.wait_for(student, count=2 + len(EXPECTED_STATUSES))
        for message in messages:
            print(f"{'':>18}email: {message['Subject']}")

    def support_answers(self) -> None:
        requester = self.address("visitor")
        ticket = self.api.json(
            "POST",
            "/api/v1/support/tickets",
            json={
                "name": "Vic Visitor",
                "email": requester,
                "subject": "How do I verify my institution?",
                "category": "affiliation",
                "message": "My university is not on the list yet.",
            },
        )
        support = self.state["support"]
        queue = self.api.json(
            "GET", "/api/v1/support/tickets?status=OPEN&limit=100", token=support
        )
        if ticket["id"] not in {item["id"] for item in queue["items"]}:
            raise DemoError(f"the ticket is not in the support queue: {queue}")
        self.api.call(
            "POST",
            f"/api/v1/support/tickets/{ticket['id']}/messages",
            token=support,
            json={"body": "Ask your registrar to register it; we then verify it."},
        )
        thread = self.api.json(
            "POST",
            "/api/v1/support/tickets/access",
            json={"tracking_code": ticket["tracking_code"], "email": requester},
        )
        authors = [message["author_role"] for message in thread["messages"]["items"]]
        if "staff" not in authors:
            raise DemoError(f"the requester does not see the reply: {thread}")
        print(
            f"{'':>18}ticket {ticket['tracking_code']} is {thread['ticket']['status']}"
        )
        for message in self.mail.wait_for(requester, count=2):
            print(f"{'':>18}email: {message['Subject']}")

    def alert_reaches_everyone(self) -> None:
        anonymous = PusherTestClient(self.settings.ws_url, self.settings.pusher_key)
        with anonymous:
            reply = anonymous.subscribe("platform-alerts")
            if reply.event != "pusher_internal:subscription_succeeded":
                raise DemoError(f"subscribing to platform-alerts: {reply.data}")
            alert = self.api.json(
                "POST",
                "/api/v1/alerts",
                token=self.state["admin"],
                json={
                    "severity": "info",
                    "message": f"Demo maintenance notice {self.tag}",
                    "expires_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
                },
            )
            socket: PusherTestClient = self.state["socket"]
            for client in (socket, anonymous):
                client.wait_for(
                    "alert.created", channel="platform-alerts", timeout=WORKER_TIMEOUT
                )
        listed = self.api.json("GET", "/api/v1/alerts")
        items = listed["items"] if isinstance(listed, dict) else listed
        if alert["id"] not in {item["id"] for item in items}:
            raise DemoError(f"GET /api/v1/alerts does not list {alert['id']}")

    def run(self) -> None:
        steps: list[tuple[str, Callable[[], None]]] = [
            ("system admin signs in", self.admin_signs_in),
            ("admin creates an institution and an employer", self.organisations_exist),
            ("employer, institution and support staff join", self.staff_join),
            ("employer admin opens an opportunity", self.opportunity_opens),
            ("student registers, verifies the email, signs in", self.student_registers),
            ("student's WebSocket subscribes", self.student_listens),
            (
                "student completes the profile, is affiliated",
                self.student_is_affiliated,
            ),
            ("student applies", self.student_applies),
            (
                "placement: shortlist, accept, start, complete, certify",
                self.placement_runs,
            ),
            ("certificate is issued, downloaded, verified", self.certificate_verifies),
            ("student's WebSocket got each status event", self.student_saw_each_status),
            ("the student's emails reached the sink", self.emails_arrived),
            ("signed-out ticket answered by support", self.support_answers),
            ("system alert reaches everyone", self.alert_reaches_everyone),
        ]
        try:
            for title, action in steps:
                with self.step(title):
                    action()
        finally:
            socket = self.state.get("socket")
            if socket is not None:
                socket.close()


def _any_names(titles: list[str], status: str) -> bool:
    return any(re.search(rf"\b{status}\b", title, re.IGNORECASE) for title in titles)


def _is_notification_about(message: Message, application_id: str) -> bool:
    if message.event != "notification.created" or not isinstance(message.data, dict):
        return False
    notification = message.data.get("notification") or {}
    return notification.get("entity_id") == application_id


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            values[name.strip()] = value
    return values


def create_admin(settings: Settings) -> None:
    """Create the system admin with the gateway CLI, using the stack's settings.

    Only a system admin can create institutions and invite staff, and the
    first one comes from the command line.
    """
    if not settings.env_file.is_file():
        raise DemoError(f"cannot create the admin: {settings.env_file} is missing")
    env = {**os.environ, **read_env_file(settings.env_file)}
    env["GATEWAY_ADMIN_PASSWORD"] = settings.admin_password
    flask = Path(sys.executable).parent / "flask"
    # Not from the repository root, where gateway/ shadows the package.
    run_dir = ROOT / "var" / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(  # noqa: S603 - our own command
        [
            str(flask),
            "--app",
            "gateway.app:create_app",
            "accounts",
            "create-admin",
            "--email",
            settings.admin_email,
            "--name",
            "Demo Admin",
        ],
        env=env,
        cwd=run_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise DemoError(
            f"flask accounts create-admin exited with {result.returncode}: "
            f"{result.stderr.strip()[-2000:]}"
        )
    print(f"{'':>18}created system admin {settings.admin_email} with the CLI")


def main() -> int:
    settings = Settings.from_environment()
    journey = Journey(
        settings=settings, api=Client(settings.url), mail=Mailbox(settings.mail_dir)
    )
    print(f"Edulink demo against {settings.url} (run {journey.tag})", flush=True)
    try:
        journey.run()
    except DemoError as error:
        print(f"FAILED: {error}", file=sys.stderr, flush=True)
        return 1
    print(f"demo finished in {time.monotonic() - journey.started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
