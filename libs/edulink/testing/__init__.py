"""Test helpers: throwaway databases, token minting, statement and call counts."""
