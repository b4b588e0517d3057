"""``python -m engine``: the command line of every task (see ``python -m engine --help``)."""
from engine.cli import main

raise SystemExit(main())
