"""`python -m llmclient.cli`: the `llmclient` command (as `python -m llmclient` is)."""

from __future__ import annotations

import sys

from llmclient.cli import main

if __name__ == "__main__":
    sys.exit(main())
