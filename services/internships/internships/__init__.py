"""Edulink internships service: employers, opportunities and applications."""
