"""`python -m optimizer` is the same program as the `evopt` console script."""

from optimizer.cli import main

raise SystemExit(main())
