"""``python -m runstore export|import|copy ...``: see ``runstore._cli``."""

from ._cli import main

raise SystemExit(main())
