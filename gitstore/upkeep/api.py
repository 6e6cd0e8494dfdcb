"""Upkeep's public surface: each job's entry point, as the CLI, the service's background round
and a store's startup call it."""

from __future__ import annotations

from gitstore.upkeep.fsck import fsck
from gitstore.upkeep.packing import gc, maintain, stats
from gitstore.upkeep.pruning import prune
from gitstore.upkeep.repair import RepairReport, reindex, repair

__all__ = ["RepairReport", "fsck", "gc", "maintain", "prune", "reindex", "repair", "stats"]
