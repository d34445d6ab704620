"""`python -m bench` runs `synthgate bench` (same options)."""

import sys

from webapp.cli import cli


def main() -> None:
    cli.main(args=["bench", *sys.argv[1:]], prog_name="python -m bench")


if __name__ == "__main__":
    main()
