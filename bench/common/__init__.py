"""Shared benchmark helpers: gunicorn servers, wrk runs, medians, machine facts."""
