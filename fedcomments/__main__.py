"""`python -m fedcomments` → the CLI."""

from fedcomments.cli import main

raise SystemExit(main())
