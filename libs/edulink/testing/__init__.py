"""Helpers for tests: throwaway databases, token minting, statement and call counting."""
