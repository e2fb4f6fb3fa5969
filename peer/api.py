"""The bot API: write a bot as one class with a few ``async def on_...`` methods.

The smallest bot::

    from peer import Bot

    class Greeter(Bot):
        async def on_connected(self, call):
            call.send(f"hello {call.caller}, you are being recorded")

        async def on_message(self, call, message, channel):
            call.send(f"you said: {message}")

Run it with ``scripts/serve --bot greeter:Greeter`` (the module is imported
from the working directory or ``sys.path``). One instance serves every call;
every hook gets the :class:`Call` it concerns. A hook you do not define does
nothing. Recording and sampled frames stay on for every bot unless the bot
(:attr:`Bot.record`, :attr:`Bot.sample_frames`, or the same on the call) or
the server flags turn them off.

**Threads.** Every hook runs on the server's event loop, one at a time per
call for the events (connected, photo, message, ended), and in a separate
task per call for video frames and for audio frames, so a slow frame hook
never delays a message. A hook must not block: run CPU-bound work (OpenCV,
a model) with ``await call.to_thread(fn, *args)``, which uses the bot's
bounded worker pool; a talk-back frame callback given as a plain ``def`` is
run in that pool for you.

**Slow bots.** Frames reach a bot through bounded queues (:attr:`Bot.video_queue`,
:attr:`Bot.audio_queue`). A frame that arrives while the queue is full
replaces the oldest one waiting, which is dropped and counted in
``meta.json`` (``bot.video.dropped``); signaling, recording and other calls
are never held up.

**Errors.** An exception in a hook ends that call only (reason
``bot-error``), with the hook, the exception and its message in the log and
in ``meta.json``'s ``errors``. To say no on purpose, raise :class:`RefuseCall`
from :meth:`Bot.on_call` or :class:`RefusePhoto` from :meth:`Bot.check_photo`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, TypeVar

from media.errors import CallbotError

if TYPE_CHECKING:
    import av
    from aiortc.mediastreams import MediaStreamTrack

    from peer.call import CallSession

__all__ = [
    "Bot",
    "BotError",
    "Call",
    "CallSummary",
    "Photo",
    "RefuseCall",
    "RefusePhoto",
]

T = TypeVar("T")

#: Codes a bot may give a refusal: lowercase words joined by dashes, as the
#: server's own error codes are.
_CODE = re.compile(r"[a-z][a-z0-9-]{0,39}")


class BotError(CallbotError):
    """Root of the errors a bot raises to say no."""

    default_code = "refused"

    def __init__(self, message: str, code: str | None = None) -> None:
        code = code or self.default_code
        if not _CODE.fullmatch(code):
            raise ValueError(f"a refusal code is lowercase letters, digits and dashes, not {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message


class RefuseCall(BotError):
    """Raise from :meth:`Bot.on_call` to refuse the call. The caller receives
    ``{"type": "error", "code": code, "message": message, "username": <bot>}``,
    as for the server's own refusals (``too-many-calls``, ...)."""

    default_code = "call-refused"


class RefusePhoto(BotError):
    """Raise from :meth:`Bot.check_photo` to refuse a photo. The sender
    receives ``{"type": "photo-error", "id": ..., "error": code, "message": message}``
    and nothing is written."""

    default_code = "photo-refused"


@dataclass(frozen=True)
class Photo:
    """A photo the caller sent. In :meth:`Bot.check_photo` ``path`` is None
    (nothing is written yet); in :meth:`Bot.on_photo` it is complete on disk."""

    path: Path | None
    mime: str  # image/jpeg, image/png or image/webp
    size: int  # bytes
    sha256: str  # 64 lowercase hex digits, verified
    width: int
    height: int
    name: str  # the client's name for it, cleaned; never a path
    id: str | int | None  # the client's id for it
    data: bytes = field(repr=False, default=b"")  # the bytes themselves

    @classmethod
    def from_entry(cls, entry: dict[str, Any], directory: Path | None, data: bytes = b"") -> Photo:
        return cls(
            path=directory / entry["file"] if directory is not None and entry.get("file") else None,
            mime=entry["mime"],
            size=entry["size"],
            sha256=entry["sha256"],
            width=entry["width"],
            height=entry["height"],
            name=entry.get("name", ""),
            id=entry.get("id"),
            data=data,
        )


@dataclass(frozen=True)
class CallSummary:
    """What :meth:`Bot.on_ended` is told about a call that has ended."""

    call_id: str
    caller: str
    reason: str  # caller-closed, bot-hangup, bot-error, ice-failed, connect-timeout, ...
    duration: float  # seconds from the offer to the end
    connected_duration: float | None  # seconds connected, None if it never connected
    directory: Path | None  # the call's directory (None if the call was refused early)
    recording: Path | None  # the recording file, if one was written
    recording_state: str  # complete, incomplete, failed, empty, disabled
    photos: tuple[Photo, ...]  # photos received, in order
    frames: tuple[Path, ...]  # sampled JPEG frames
    errors: tuple[str, ...]


class Bot:
    """Subclass this and define the hooks you need; see the module docstring.

    Class attributes set what every call gets; the same names on a
    :class:`Call` change it for that call (in :meth:`on_call`, or later for
    the frame rates).
    """

    #: Decoded video frames per second given to :meth:`on_video_frame`: 0 for
    #: none, ``math.inf`` for every frame. Up to 2 per second the frames come
    #: from requested keyframes decoded alone (the same decode that saves
    #: sampled pictures, about 1% of a core); faster rates decode every frame.
    video_fps: float = 0
    #: Give decoded audio (``av.AudioFrame``, 20 ms each) to :meth:`on_audio_frame`.
    audio_frames: bool = False
    #: Record the caller's audio and video (the server's ``--no-record`` wins).
    record: bool = True
    #: Save a sampled JPEG every ``--frame-interval`` seconds.
    sample_frames: bool = True
    #: Frames waiting for the bot before the oldest is dropped (and counted).
    video_queue: int = 2
    audio_queue: int = 50

    #: Set by the server: the bot's username (``--bot-name``).
    name: str = "bot"

    # -- life cycle of the server ---------------------------------------------

    async def on_start(self) -> None:
        """The server is starting (before the first call)."""

    async def on_stop(self) -> None:
        """The server is stopping (after every call ended)."""

    # -- a call ----------------------------------------------------------------

    async def on_call(self, call: Call) -> None:
        """A call arrives, before it is answered. Raise :class:`RefuseCall` to
        refuse it. Set up talk-back here (:meth:`Call.echo`,
        :meth:`Call.send_video`, :meth:`Call.add_track`): outgoing media is
        negotiated in the answer."""

    async def on_connected(self, call: Call) -> None:
        """Media flows (ICE and DTLS are up)."""

    async def on_video_frame(self, call: Call, frame: av.VideoFrame) -> None:
        """A decoded video frame, at most ``video_fps`` a second. ``frame.pts``
        is in milliseconds (``frame.time_base`` 1/1000) on the call's timeline."""

    async def on_audio_frame(self, call: Call, frame: av.AudioFrame) -> None:
        """A decoded audio frame, when ``audio_frames`` is on."""

    async def check_photo(self, call: Call, photo: Photo) -> None:
        """A photo's bytes arrived and were verified (size, SHA-256, it decodes),
        before it is written. Raise :class:`RefusePhoto` to refuse it."""

    async def on_photo(self, call: Call, photo: Photo) -> None:
        """A photo is complete on disk and the caller was told ``photo-saved``."""

    async def on_message(self, call: Call, message: str | bytes, channel: str) -> None:
        """A message on an application data channel (any label but ``photos``)."""

    async def on_ended(self, call: Call, summary: CallSummary) -> None:
        """The call ended and its recording is finalized. Files the bot writes
        here and changes to :attr:`Call.meta` still reach ``meta.json``."""


class Call:
    """One call, as a bot sees it. Made by the server; passed to every hook."""

    def __init__(self, session: CallSession) -> None:
        self._session = session
        #: Anything JSON can hold; saved in ``meta.json`` under ``bot_data``.
        self.meta: dict[str, Any] = {}
        #: Per-call settings, initialised from the bot's class attributes.
        bot = session.bot
        self.record: bool = bot.record
        self.sample_frames: bool = bot.sample_frames
        self._video_fps = float(bot.video_fps)
        self._audio_frames = bool(bot.audio_frames)

    def __repr__(self) -> str:
        return f"<Call {self.id} from {self.caller}>"

    @property
    def id(self) -> str:
        """The call id, also the name of its directory."""
        return self._session.id

    @property
    def caller(self) -> str:
        """Who called: the username, or the WHIP publisher."""
        return self._session.caller

    @property
    def source(self) -> str:
        """``"signaling"`` for a call over the WebSocket, ``"whip"`` for a WHIP publisher."""
        return self._session.source

    @property
    def directory(self) -> Path | None:
        """The call's directory (created once :meth:`Bot.on_call` accepted)."""
        d = self._session.directory
        return d.path if d is not None else None

    @property
    def offered(self) -> frozenset[str]:
        """The media the caller offered: ``audio``, ``video``, ``application`` (data)."""
        return self._session.offered_kinds

    @property
    def connected(self) -> bool:
        return self._session.connected.is_set()

    # -- what the bot receives ---------------------------------------------------

    @property
    def video_fps(self) -> float:
        return self._video_fps

    @video_fps.setter
    def video_fps(self, value: float) -> None:
        if not value >= 0:
            raise ValueError("video_fps must be >= 0")
        self._video_fps = float(value)
        self._session.media.video_rate_changed()

    @property
    def audio_frames(self) -> bool:
        return self._audio_frames

    @audio_frames.setter
    def audio_frames(self, value: bool) -> None:
        self._audio_frames = bool(value)
        self._session.media.audio_changed()

    # -- talking back ---------------------------------------------------------------

    def echo(self, *kinds: str) -> None:
        """Send the caller's own audio and/or video back (default both), as
        encoded frames, never decoded or re-encoded. In :meth:`Bot.on_call`."""
        self._session.media.plan_echo(kinds or ("audio", "video"))

    def send_video(self, transform: Callable[[av.VideoFrame], Any]) -> None:
        """Send back the caller's video as ``transform(frame)`` returns it.

        ``transform`` takes each decoded incoming ``av.VideoFrame`` and returns
        the frame to send (or None to send the incoming one unchanged). A plain
        function runs in the bot's worker pool, off the event loop; an
        ``async def`` runs on the loop. Frames it cannot keep up with are
        dropped (the latest is always used). In :meth:`Bot.on_call`.
        """
        self._session.media.plan_transform("video", transform)

    def send_audio(self, transform: Callable[[av.AudioFrame], Any]) -> None:
        """As :meth:`send_video`, for the caller's audio."""
        self._session.media.plan_transform("audio", transform)

    def add_track(self, track: MediaStreamTrack) -> None:
        """Send an aiortc ``MediaStreamTrack`` of your own (its ``recv()``
        returns frames with ``pts``/``time_base`` set). One per kind. In
        :meth:`Bot.on_call`."""
        self._session.media.plan_track(track)

    def send(self, message: str | bytes, channel: str | None = None) -> None:
        """Send a message on an application data channel: ``channel`` by
        label, or the first one the caller opened (``chat`` is opened by the
        bot if there is none). Needs a data section in the offer."""
        self._session.channels.send(message, channel)

    async def send_photo(self, data: bytes, *, mime: str = "image/jpeg", name: str = "") -> dict[str, Any]:
        """Send a photo to the caller over the ``photos`` channel, with the
        same protocol and checks as photos sent to the bot; returns the
        caller's ``photo-saved`` reply. Raises :class:`photos.PhotoError`
        (with the caller's error code) or :class:`TimeoutError`."""
        return await self._session.send_photo(data, mime=mime, name=name)

    async def write_file(self, name: str, data: bytes) -> Path:
        """Write a file of the bot's into the call directory, atomically; it is
        listed in ``meta.json`` with its size and SHA-256. ``name`` is a plain
        file name of letters, digits, ``.``, ``_`` and ``-``."""
        return await self._session.write_file(name, data)

    async def hangup(self, reason: str = "bot-hangup") -> None:
        """End the call; the caller receives ``close``."""
        await self._session.end(reason)

    async def to_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking or CPU-bound ``fn(*args)`` in the bot's bounded worker pool."""
        return await self._session.runtime.to_thread(fn, *args)

    @property
    def stats(self) -> dict[str, Any]:
        """Frames and messages given to the bot and dropped, so far."""
        return self._session.bot_stats()


HookResult = Awaitable[None]
