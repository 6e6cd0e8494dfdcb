"""`python -m gitstore.cli`, as the tests and benches run the command."""

from gitstore.cli import main

# Guarded: the architecture tests import every module, and an import must not run the command.
if __name__ == "__main__":
    main()
