"""Drills (issue 7), Qt-free: recurrence, conflicts, the scenario clock, the inject scheduler,
measurement, queries and the after-action report. Writes go through ``db.drills``."""
