"""``gateway reconcile``: proves that the money adds up, or names every place where it does not.

Rules (each checked over the whole database, in one snapshot):
- a user's balance equals the sum of their ledger rows;
- a limited key's remaining quota equals the sum of its ledger rows' key amounts;
- every ledger row names an existing user, and a key of that user when it names one;
- no hold is still open past its deadline (beyond a grace for the sweep to run);
- every task is charged at most once and refunded at most once (only after a charge, only when
  it ended FAILURE or CANCEL), and its ledger rows add up to what it costs now. This is read
  from the ledger alone, which is kept whole; holds of ended tasks are deleted in time;
- every hold still kept agrees with its ledger rows (its amount, and SETTLED or RELEASED exactly
  when the ledger says so).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from gateway.storage.reconciliation import find_gaps


@dataclass(frozen=True)
class Reconciliation:
    gaps: dict[str, list[dict[str, Any]]]  # rule -> offending rows; every rule is present

    @property
    def ok(self) -> bool:
        return not any(self.gaps.values())

    def summary(self) -> dict[str, Any]:
        """What to print: pass or fail, the count per rule, and the first rows of each gap."""
        return {
            "ok": self.ok,
            "gaps": {rule: len(rows) for rule, rows in self.gaps.items()},
            "examples": {rule: rows[:10] for rule, rows in self.gaps.items() if rows},
        }


async def reconcile(pool: asyncpg.Pool, hold_grace_s: float) -> Reconciliation:
    return Reconciliation(await find_gaps(pool, hold_grace_s))
