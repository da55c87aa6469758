"""The operator's pages under ``/console/admin``: an overview, users and their keys and money,
channels, prices and groups, the searches of tasks and the ledger, and reconciliation.

Each page does what the admin API does, through the same ``gateway.admin`` services (so the
same checks and words), and announces what the API announces. No page shows a key (only its
hint), a key's hash, a channel secret, a callback token or a client's webhook URL.
"""

from __future__ import annotations

from . import channels, prices, records, users

ROUTES = [*records.ROUTES, *users.ROUTES, *channels.ROUTES, *prices.ROUTES]
