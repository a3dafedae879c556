"""Load benchmarks: Edulink services under gunicorn, measured with wrk."""
