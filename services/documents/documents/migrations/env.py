from documents.models import Base
from edulink.migrations import run_migrations

run_migrations(Base.metadata)
