"""`python -m gitstore.cli`, as the tests and benches run the command."""

from gitstore.cli import main

main()
