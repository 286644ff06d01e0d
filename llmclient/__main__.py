"""`python -m llmclient`: the `llmclient` command."""

from __future__ import annotations

import sys

from llmclient.cli import main

if __name__ == "__main__":
    sys.exit(main())
