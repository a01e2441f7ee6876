"""The offline engine: per-user change feed, cursors, pull, push of mutations, idempotency.

It knows collections and mutations only through a `Registry` that backend/ fills, and imports nothing from
backend/. See ../ARCHITECTURE.md (Sync) for why the cursor is a transaction-id snapshot and not a sequence.
"""
