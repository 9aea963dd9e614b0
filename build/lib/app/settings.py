"""Where things live: the default replica path and user settings (Qt-free)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import platformdirs

APP_NAME = "onemap-console"
RESOURCES = Path(__file__).resolve().parents[1] / "resources"


def data_dir() -> Path:
    return Path(os.environ.get("ONEMAP_DATA_DIR") or platformdirs.user_data_dir(APP_NAME))


def default_db_path() -> Path:
    return data_dir() / "replica.db"


def config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "settings.json"


def load_settings() -> dict:
    try:
        return json.loads(config_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def save_settings(values: dict) -> None:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(values, ensure_ascii=False, indent=2), encoding="utf-8")
    tmp.replace(path)
