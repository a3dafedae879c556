"""Edulink documents service: PDF letters, certificates, reports and verification."""
