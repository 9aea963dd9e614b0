"""Replica ⇄ PostgreSQL upstream sync (issue 9): outbox, push, pull, ledger, feed.

The contract between the two sides is ``docs/sync.md``.
"""
