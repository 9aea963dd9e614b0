"""A short alert sound for new emergency-class events, which can be muted.

``QtMultimedia`` is imported lazily, inside a try: on an image without ``libpulse0`` (or with
no audio device) the import or the player fails, and the console stays silent (logged once)
instead of failing to start. The sound is two short sine beeps written at runtime with the
stdlib ``wave`` module to a temporary WAV file (no binary audio in the repository). Muting is
persisted in the user settings (``app.settings``, key ``alert_muted``).

``EmergencyAlerter`` watches the replica for emergency events with an id above the highest one
it has seen (the session's visible events only) and plays the sound; the window calls
``check()`` whenever the replica changed.
"""

from __future__ import annotations

import logging
import math
import struct
import tempfile
import wave
from pathlib import Path

from PySide6.QtCore import QObject, QUrl, Signal

from app import panel_data, settings

log = logging.getLogger(__name__)
SETTINGS_KEY = "alert_muted"
RATE = 22050


def write_beep_wav(path: str | Path, *, freqs=(988.0, 1319.0), beep_ms: int = 140, gap_ms: int = 70,
                   volume: float = 0.5) -> Path:  # fmt: skip
    """Two short sine beeps (with 8 ms fades, no clicks) as 16-bit mono PCM."""
    path = Path(path)
    frames = bytearray()
    n = int(RATE * beep_ms / 1000)
    fade = int(RATE * 0.008)
    for i, f in enumerate(freqs):
        for k in range(n):
            env = min(1.0, k / fade, (n - 1 - k) / fade)
            frames += struct.pack("<h", int(32767 * volume * env * math.sin(2 * math.pi * f * k / RATE)))
        if i < len(freqs) - 1:
            frames += b"\x00\x00" * int(RATE * gap_ms / 1000)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(bytes(frames))
    return path


class AlertSound(QObject):
    """Plays the alert unless muted; silent (never raising) when audio is unavailable."""

    mutedChanged = Signal(bool)

    _warned = False  # log the missing audio once per process

    def __init__(self, parent=None, *, muted: bool | None = None, persist: bool = True) -> None:
        super().__init__(parent)
        self._persist = persist
        if muted is None:
            muted = bool(settings.load_settings().get(SETTINGS_KEY, False))
        self._muted = muted
        self._effect = None
        self._tried = False
        self._wav: Path | None = None
        self.available: bool | None = None  # None until the first play tried to set up audio
        self.plays = 0  # how many alerts were due (played or silent), for tests and the status bar

    # -- mute -----------------------------------------------------------------------------------
    @property
    def muted(self) -> bool:
        return self._muted

    def set_muted(self, muted: bool) -> None:
        muted = bool(muted)
        if muted == self._muted:
            return
        self._muted = muted
        if self._persist:
            try:
                values = settings.load_settings()
                values[SETTINGS_KEY] = muted
                settings.save_settings(values)
            except OSError as exc:
                log.warning("cannot save the mute setting: %s", exc)
        if muted and self._effect is not None:
            try:
                self._effect.stop()
            except RuntimeError:
                pass
        self.mutedChanged.emit(muted)

    # -- audio ----------------------------------------------------------------------------------
    def _setup(self) -> None:
        self._tried = True
        try:
            from PySide6.QtMultimedia import QSoundEffect  # lazy: needs libpulse0 on Debian

            self._wav = write_beep_wav(Path(tempfile.gettempdir()) / f"onemap-alert-{id(self):x}.wav")
            effect = QSoundEffect(self)
            effect.setSource(QUrl.fromLocalFile(str(self._wav)))
            effect.setVolume(0.8)
            self._effect = effect
            self.available = True
        except (ImportError, RuntimeError, OSError) as exc:
            self._effect = None
            self.available = False
            if not AlertSound._warned:
                AlertSound._warned = True
                log.warning("alert sound unavailable (%s: %s); alerts stay silent", type(exc).__name__, exc)

    def play(self) -> bool:
        """Play the alert; returns True if a sound was started."""
        self.plays += 1
        if self._muted:
            return False
        if not self._tried:
            self._setup()
        if self._effect is None:
            return False
        try:
            self._effect.play()
        except RuntimeError as exc:
            log.warning("alert sound failed: %s", exc)
            return False
        return True

    def close(self) -> None:
        if self._wav is not None:
            self._wav.unlink(missing_ok=True)
            self._wav = None


class EmergencyAlerter(QObject):
    """Notices new emergency-class events the session may read and sounds the alert.

    ``newEmergencies(list[dict])`` carries ``{id, title, address, drill_id, status}``."""

    newEmergencies = Signal(list)

    def __init__(self, replica, session, sound: AlertSound, parent=None) -> None:
        super().__init__(parent)
        self.replica = replica
        self.session = session
        self.sound = sound
        conn = replica.reader()
        try:
            self.max_id = panel_data.max_emergency_id(conn, session)
        finally:
            conn.close()

    def check(self) -> list[dict]:
        conn = self.replica.reader()
        try:
            new = panel_data.new_emergencies(conn, self.session, self.max_id)
        finally:
            conn.close()
        if new:
            self.max_id = max(e["id"] for e in new)
            self.sound.play()
            self.newEmergencies.emit(new)
        return new
