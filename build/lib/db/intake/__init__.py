"""Intake of external feeds (issue 4): readers, validation, the set-based import pipeline.

Formats: ``12345-csv`` (:mod:`db.intake.csv12345`), ``open311`` (:mod:`db.intake.open311`, JSON or
XML), ``citymgmt`` (:mod:`db.intake.citymgmt`), ``iot-jsonl`` (:mod:`db.intake.iot_jsonl`). The entry
point is :func:`db.intake.pipeline.import_file` (re-exported here, imported lazily so that the
schema migration can use :mod:`db.intake.mappings` without loading the pipeline).
"""

from __future__ import annotations

__all__ = [
    "FORMATS",
    "ImportBusy",
    "ImportFileError",
    "ImportOptionError",
    "ImportResult",
    "IntakeError",
    "import_file",
    "load_mapping_file",
]


def __getattr__(name: str):
    if name in __all__:
        from db.intake import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'db.intake' has no attribute {name!r}")
