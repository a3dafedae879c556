"""The gateway's database handle, shared by views, the CLI and the policy check."""

from edulink.db import Database

db = Database()
