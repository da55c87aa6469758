"""``python -m gateway``: the ``gateway`` command (``gateway.cli``)."""

from gateway.cli import main

if __name__ == "__main__":
    main()
