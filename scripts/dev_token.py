"""Print an access token signed with the local development key.

Apps started by ``make up`` trust this key through ``var/dev/jwks.json``, so
the token works with curl against them:

    TOKEN=$(make -s dev-token ROLE=student)
    curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8001/...
"""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import timedelta

from local_env import DEFAULTS, ensure_dev_secrets, mint_token

ROLES = (
    "student",
    "employer_admin",
    "institution_admin",
    "supervisor",
    "support_staff",
    "system_admin",
    "service",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", required=True, choices=ROLES)
    parser.add_argument(
        "--subject",
        default=None,
        help="`sub` claim, the user id (default: a new random UUID)",
    )
    parser.add_argument(
        "--org",
        action="append",
        default=[],
        metavar="UUID",
        help="organisation id for the `org_ids` claim; repeat for several",
    )
    parser.add_argument("--email", default=None, help="`email` claim (verified)")
    parser.add_argument(
        "--minutes", type=int, default=60, help="lifetime in minutes (default: 60)"
    )
    parser.add_argument("--issuer", default=DEFAULTS["JWT_ISSUER"])
    parser.add_argument("--audience", default=DEFAULTS["JWT_AUDIENCE"])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        orgs = [str(uuid.UUID(org)) for org in args.org]
    except ValueError:
        print(f"invalid --org value, expected UUIDs: {args.org}", file=sys.stderr)
        return 2
    token = mint_token(
        ensure_dev_secrets(),
        issuer=args.issuer,
        audience=args.audience,
        role=args.role,
        subject=args.subject or str(uuid.uuid4()),
        org_ids=orgs,
        email=args.email,
        lifetime=timedelta(minutes=args.minutes),
    )
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
