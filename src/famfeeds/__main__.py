"""Allow ``python -m famfeeds``."""

from famfeeds.cli import main

main()
