"""`python -m shared.devstack.fakestripe --port N [--state FILE] [--from-scratch]`."""

from __future__ import annotations

from shared.devstack.fakestripe.server import main

if __name__ == "__main__":
    main()
