"""The documents service's database handle, shared by views and jobs."""

from edulink.db import Database

db = Database()
