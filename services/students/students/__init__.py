"""Edulink students service: institutions, student profiles and affiliation claims."""
