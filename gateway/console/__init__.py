"""The web console at ``/console``: customers sign in to manage their keys, look at their tasks
and money, and press their tasks' buttons; operators manage users, money, channels and prices.

Pages are rendered on the server (Jinja2) with one small script of our own for the live parts
(``static/console.js``); every action calls the same services as the admin API and ``/mj``.
"""
