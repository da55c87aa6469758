"""Prices, holds, charges, refunds and the ledger."""
