"""``python -m gilhub`` is the ``gilhub`` command."""

from gilhub.app import main

main()
