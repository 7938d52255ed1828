"""Cross-request batching: a bounded queue of work items and one device thread per model."""

from embedserve.scheduler.batching import select_batch
from embedserve.scheduler.scheduler import Scheduler
from embedserve.stats import SchedulerStats

__all__ = ["Scheduler", "SchedulerStats", "select_batch"]
