"""`python -m embedserve` runs the CLI."""

from embedserve.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
