from edulink.migrations import run_migrations
from internships.models import Base

run_migrations(Base.metadata)
