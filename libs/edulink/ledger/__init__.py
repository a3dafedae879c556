"""Append-only, hash-chained event log of each service's entities.

A service builds one :class:`Ledger` on its MetaData, records events with
:meth:`Ledger.record_event` in its business transaction, registers the
ledger's job on its :class:`~edulink.jobs.JobRegistry`, and serves the
entries with :func:`ledger_blueprint`.
"""

from edulink.ledger.chain import BrokenLink, ChainReport, entry_hash, verify_chain
from edulink.ledger.ledger import LEDGER_APPEND, Ledger, LedgerAppend
from edulink.ledger.tables import append_only_ddl, ledger_table

__all__ = [
    "LEDGER_APPEND",
    "BrokenLink",
    "ChainReport",
    "Ledger",
    "LedgerAppend",
    "append_only_ddl",
    "entry_hash",
    "ledger_table",
    "verify_chain",
]
