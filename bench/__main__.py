"""`python -m bench` runs the same command as `synthgate bench` (same options)."""

import logging

from bench.command import bench


def main() -> None:
    # as the synthgate group does before any of its commands runs
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    bench.main(prog_name="python -m bench")


if __name__ == "__main__":
    main()
