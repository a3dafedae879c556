from edulink.migrations import run_migrations
from students.models import Base

run_migrations(Base.metadata)
