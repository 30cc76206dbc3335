"""``python -m wpl`` is the ``wpl`` command."""

from .cli import main

raise SystemExit(main())
