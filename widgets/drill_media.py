"""Field media (recorded audio/video files and camera stream URLs) of an event or inject.

Listed in the event detail panel (tab 现场音视频). Opening one plays it with Qt Multimedia, which
is imported lazily inside a try (it needs ``libpulse0``): without the library, without a codec,
with a missing file or a dead stream the row says 不可用 and why, and the console carries on.
A stream that has not started playing within :data:`STREAM_TIMEOUT_MS` is stopped (不可用：流超时).
Nothing here blocks the UI thread: the player loads asynchronously and a QTimer guards it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.drills import queries

log = logging.getLogger(__name__)
STREAM_TIMEOUT_MS = 8000
FILE_TIMEOUT_MS = 5000
KIND_ZH = {"audio": "音频", "video": "视频", "image": "图片", "stream": "实时流"}
_multimedia = None  # the imported module, False when unavailable


def multimedia():
    """``PySide6.QtMultimedia`` or ``None`` when it cannot be loaded (missing libpulse0 …)."""
    global _multimedia
    if _multimedia is None:
        try:
            from PySide6 import QtMultimedia

            _multimedia = QtMultimedia
        except (ImportError, OSError) as exc:  # pragma: no cover - depends on the image
            log.warning("Qt Multimedia unavailable: %s", exc)
            _multimedia = False
    return _multimedia or None


def _is_stream(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


class MediaPlayerDialog(QDialog):
    """A small player for one media reference; reports 不可用 with the reason instead of failing."""

    status = Signal(str)

    def __init__(self, media: dict, *, base_dir: Path | None = None, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"{KIND_ZH.get(media['kind'], media['kind'])} · {media.get('title') or media['uri']}")
        self.resize(640, 420)
        self.media = media
        self.player = None
        self.audio = None
        self.message = QLabel("正在打开…")
        self.message.setObjectName("mediaStatus")
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        lay = QVBoxLayout(self)
        self.video_host = QVBoxLayout()
        lay.addLayout(self.video_host, 1)
        lay.addWidget(self.message)
        row = QHBoxLayout()
        row.addStretch(1)
        close = QPushButton("关闭")
        close.clicked.connect(self.close)
        row.addWidget(close)
        lay.addLayout(row)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self._timed_out)
        self.result: str | None = None
        self._open(base_dir)

    def _fail(self, why: str) -> None:
        self.result = f"不可用：{why}"
        self.message.setText(self.result)
        self.timer.stop()
        if self.player is not None:
            try:
                self.player.stop()
            except RuntimeError:
                pass
        self.status.emit(self.result)

    def _open(self, base_dir: Path | None) -> None:
        uri = self.media["uri"]
        if self.media["kind"] == "image":
            self._fail("图片请用外部查看器打开")
            return
        if _is_stream(uri):
            url = QUrl(uri)
            if not url.isValid():
                self._fail("地址无效")
                return
        else:
            path = Path(uri[7:] if uri.startswith("file://") else uri)
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
            if not path.exists():
                self._fail(f"文件不存在 {path}")
                return
            url = QUrl.fromLocalFile(str(path))
        mm = multimedia()
        if mm is None:
            self._fail("本机缺少 Qt Multimedia 运行库（libpulse0）")
            return
        try:
            self.player = mm.QMediaPlayer(self)
            self.audio = mm.QAudioOutput(self)
            self.player.setAudioOutput(self.audio)
            if self.media["kind"] in ("video", "stream"):
                from PySide6.QtMultimediaWidgets import QVideoWidget

                video = QVideoWidget(self)
                self.video_host.addWidget(video)
                self.player.setVideoOutput(video)
            self.player.errorOccurred.connect(lambda _e, text: self._fail(text or "无法解码"))
            self.player.playbackStateChanged.connect(self._state)
            self.player.mediaStatusChanged.connect(self._media_status)
            self.player.setSource(url)
            self.player.play()
        except (RuntimeError, ImportError, OSError) as exc:
            self._fail(str(exc))
            return
        self.timer.start(STREAM_TIMEOUT_MS if _is_stream(uri) else FILE_TIMEOUT_MS)

    def _media_status(self, st) -> None:
        mm = multimedia()
        if mm and st == mm.QMediaPlayer.MediaStatus.InvalidMedia:
            self._fail("无法解码（缺少编解码器或文件损坏）")

    def _state(self, st) -> None:
        mm = multimedia()
        if mm and st == mm.QMediaPlayer.PlaybackState.PlayingState and self.result is None:
            self.timer.stop()
            self.result = "播放中"
            self.message.setText(self.result)
            self.status.emit(self.result)

    def _timed_out(self) -> None:
        if self.result is None:
            self._fail("流超时" if _is_stream(self.media["uri"]) else "打开超时")

    def closeEvent(self, event) -> None:  # noqa: N802
        self.timer.stop()
        if self.player is not None:
            try:
                self.player.stop()
                self.player.setSource(QUrl())
            except RuntimeError:
                pass
        super().closeEvent(event)


class FieldMediaPanel(QWidget):
    """The media list of the selected event (and of the inject it came from)."""

    def __init__(self, replica, *, lang: str = "zh", parent=None, actor: str = "console",
                 can_add: bool = True) -> None:  # fmt: skip
        super().__init__(parent)
        self.replica = replica
        self.actor = actor
        self.lang = lang
        self.event_id: int | None = None
        self.rows: list[dict] = []
        self.tree = QTreeWidget()
        self.tree.setObjectName("fieldMedia")
        self.tree.setHeaderLabels(["时间", "类型", "设备", "标题 / 地址", "状态"])
        self.tree.setRootIsDecorated(False)
        self.tree.itemActivated.connect(lambda item, _c: self.open_row(self.tree.indexOfTopLevelItem(item)))
        self.empty = QLabel("本事件没有现场音视频")
        self.empty.setObjectName("emptyState")
        self.open_button = QPushButton("打开")
        self.open_button.clicked.connect(lambda: self.open_row(self.tree.currentIndex().row()))
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 6, 4, 4)
        lay.addWidget(self.empty)
        lay.addWidget(self.tree, 1)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.open_button)
        lay.addLayout(row)
        add = QHBoxLayout()
        self.kind = QComboBox()
        for k in ("video", "audio", "stream", "image"):
            self.kind.addItem(KIND_ZH[k], k)
        self.uri = QLineEdit()
        self.uri.setObjectName("mediaUri")
        self.uri.setPlaceholderText("文件路径或流地址（rtsp://、http://）")
        self.device = QLineEdit()
        self.device.setPlaceholderText("设备")
        self.device.setMaximumWidth(110)
        self.add_button = QPushButton("登记")
        self.add_button.clicked.connect(self.add_media)
        for w in (self.kind, self.uri, self.device, self.add_button):
            add.addWidget(w)
            w.setVisible(can_add)
        lay.addLayout(add)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        lay.addWidget(self.message)
        self.players: list[MediaPlayerDialog] = []
        self.show_event(None)

    def show_event(self, event_id: int | None) -> None:
        self.event_id = event_id
        self.rows = []
        if event_id is not None:
            conn = self.replica.reader()
            try:
                self.rows = queries.media_for_event(conn, event_id)
            finally:
                conn.close()
        self.tree.clear()
        for m in self.rows:
            item = QTreeWidgetItem([m["recorded_at"][5:16].replace("T", " "), KIND_ZH.get(m["kind"], m["kind"]),
                                    m.get("device") or "", m.get("title") or m["uri"], ""])  # fmt: skip
            item.setToolTip(3, m["uri"])
            self.tree.addTopLevelItem(item)
        self.tree.setVisible(bool(self.rows))
        self.open_button.setVisible(bool(self.rows))
        self.empty.setVisible(not self.rows)
        self.add_button.setEnabled(event_id is not None)

    def add_media(self) -> int | None:
        """Register a media reference (recorded now) for the shown event."""
        from db import drills as db_drills

        if self.event_id is None:
            return None
        try:
            mid = db_drills.add_media(self.replica, {"event_id": self.event_id, "kind": self.kind.currentData(),
                                                     "uri": self.uri.text(), "device": self.device.text() or None},
                                      actor=self.actor)  # fmt: skip
        except db_drills.DrillError as exc:
            self.message.setText(str(exc))
            return None
        self.message.setText("")
        self.uri.clear()
        self.show_event(self.event_id)
        return mid

    def open_row(self, row: int) -> MediaPlayerDialog | None:
        if not 0 <= row < len(self.rows):
            return None
        item = self.tree.topLevelItem(row)
        base = Path(self.replica.path).parent
        dlg = MediaPlayerDialog(self.rows[row], base_dir=base, parent=self)
        dlg.status.connect(lambda text, it=item: it.setText(4, text))
        if dlg.result:
            item.setText(4, dlg.result)
        self.players = [p for p in self.players if p.isVisible()] + [dlg]
        dlg.show()
        return dlg
