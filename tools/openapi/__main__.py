"""`python -m tools.openapi [--output FILE]`: record the OpenAPI examples from a run of the app."""

import argparse
from pathlib import Path

from app.openapi_examples import EXAMPLES_FILE
from tools.openapi.scenario import write_examples


def main(argv: list[str] | None = None) -> None:
    """Run the scenario and write the recording (default: openapi/examples.json)."""
    parser = argparse.ArgumentParser(prog="python -m tools.openapi", description=__doc__)
    parser.add_argument("--output", type=Path, default=EXAMPLES_FILE)
    args = parser.parse_args(argv)
    print(f"recorded examples of {write_examples(args.output)} operations in {args.output}")


if __name__ == "__main__":
    main()
