"""Spawners start, watch and stop user servers (see :mod:`gilhub.spawner.base`)."""

from gilhub.spawner.base import Spawner
from gilhub.spawner.local import LocalProcessSpawner

__all__ = ["LocalProcessSpawner", "Spawner"]
