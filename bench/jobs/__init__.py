"""Benchmarks of edulink.jobs and edulink.ledger against bare pgqueuer."""
