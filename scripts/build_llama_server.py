"""Build llama.cpp's llama-server once per machine for the remote engine's tests (see
`llmclient.testing.llama_server`); prints the binary's path. A cached binary returns at once.

    python scripts/build_llama_server.py [--jobs N] [--nice N]
"""

from __future__ import annotations

import argparse

from llmclient.testing.llama_server import build_llama_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=None, help="compile jobs (default: every CPU)")
    parser.add_argument("--nice", type=int, default=10, help="nice increment of the build (default 10)")
    options = parser.parse_args()
    print(build_llama_server(jobs=options.jobs, nice=options.nice))


if __name__ == "__main__":
    main()
