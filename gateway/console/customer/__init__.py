"""A customer's pages: home, keys, tasks (gallery, detail, buttons), usage, webhooks, account.

Every read is of the signed-in user's own records (their id is in every query), and anything
else is a 404, the same as a record that does not exist. Buttons go through the ``/mj`` submit
path (the same body checks, prices, holds and key rules) with one of the user's own keys.
"""

from __future__ import annotations

from . import account, keys, tasks

ROUTES = [*account.ROUTES, *keys.ROUTES, *tasks.ROUTES]
