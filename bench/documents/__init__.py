"""Benchmark of the documents service against bare WeasyPrint."""
