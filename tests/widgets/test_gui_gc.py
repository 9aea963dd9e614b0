"""Collections happen on the GUI thread only."""

import gc
import threading

from widgets.gui_gc import GuiThreadCollector


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_collector_turns_automatic_collection_off_and_collects_on_its_timer(qtbot):
    was = gc.isenabled()
    collector = GuiThreadCollector(interval_ms=20)
    try:
        assert not gc.isenabled()
        seen: list[str] = []
        gc.callbacks.append(cb := lambda phase, info: seen.append(threading.current_thread().name))
        try:
            def churn() -> None:  # a worker allocating lots of cycles never triggers a collection
                for _ in range(50_000):
                    _Cycle()

            t = threading.Thread(target=churn, name="worker")
            t.start()
            t.join()
            assert "worker" not in seen
            qtbot.waitUntil(lambda: bool(seen) and set(seen) == {threading.main_thread().name}, timeout=5000)
        finally:
            gc.callbacks.remove(cb)
    finally:
        collector.stop()
        if was:
            gc.enable()
