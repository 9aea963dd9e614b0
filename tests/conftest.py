"""Test-wide setup: headless Qt + Chromium flags before any Qt import."""

import os
import sys

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.setdefault("QTWEBENGINE_CHROMIUM_FLAGS", "--no-sandbox")
os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")
# desk passwords go to libpq's password file (db/sync/credentials.py): never the tester's ~/.pgpass
_PGPASS_DIR = __import__("tempfile").mkdtemp(prefix="onemap-pgpass-")  # removed in pytest_unconfigure
os.environ["PGPASSFILE"] = os.path.join(_PGPASS_DIR, "pgpass")

from widgets.qt_setup import prepare_qt  # noqa: E402

prepare_qt()

import datetime as dt  # noqa: E402
import gc  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

DEMO_UNTIL = dt.datetime(2026, 11, 20, 15, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
DEMO_EVENTS = 5000
DEMO_SEED = 7


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory) -> Path:
    """A small demo replica (5,000 events), generated once per test session. Treat as read-only:
    copy it (``demo_copy``) before writing."""
    from db.demo.generate import DemoOptions, generate_demo_file

    path = tmp_path_factory.mktemp("demo") / "demo.db"
    generate_demo_file(path, DemoOptions(seed=DEMO_SEED, until=DEMO_UNTIL, events=DEMO_EVENTS))
    return path


@pytest.fixture
def demo_copy(demo_db, tmp_path) -> Path:
    """A private writable copy of the small demo replica."""
    import shutil

    target = tmp_path / "demo.db"
    shutil.copy(demo_db, target)
    return target


# Qt WebEngine can crash in its C++ destructors while the interpreter tears down ("Release of
# profile requested but WebEnginePage still not deleted"), turning a green run into exit 139
# after every test has passed and the summary is printed. Once pytest is completely done, leave
# with its own exit status instead of running those destructors.
_EXIT_STATUS: dict[str, int] = {}


def pytest_sessionfinish(session, exitstatus):
    _EXIT_STATUS["status"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    import shutil

    shutil.rmtree(_PGPASS_DIR, ignore_errors=True)  # before os._exit below (atexit would not run)
    if "status" in _EXIT_STATUS and not os.environ.get("ONEMAP_TEST_NORMAL_EXIT"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS["status"])


# As in the app (widgets/gui_gc.py): the automatic collector is off, so a worker thread can never run a
# collection that finalises Qt objects off the GUI thread (one segfault seen in a CI run). Each test's
# garbage is reclaimed on the GUI thread after it.
gc.disable()


@pytest.fixture(autouse=True)
def _collect_on_the_gui_thread():
    yield
    gc.collect()
