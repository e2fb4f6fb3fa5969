"""A face-presence checker, a proctoring building block.

About 2 times a second it looks for a frontal face with scikit-image's LBP
cascade (the model file ships inside the scikit-image package), draws a box
around the face on the video it sends back, and counts the seconds with and
without a face into ``meta.json`` (``bot_data.face``). It tells the caller
when the face appears or goes::

    pip install scikit-image    # (scripts/test installs it)
    scripts/serve --bot examples.face_presence:FacePresenceBot

OpenCV 5 dropped ``CascadeClassifier`` and its Haar files, so the detector
comes from scikit-image instead.
"""

from __future__ import annotations

import threading

import av
import cv2
import numpy as np

from peer import Bot, Call, CallSummary

#: Frames are scaled to this height before detection: faster, and a face in a
#: webcam picture is large anyway.
DETECT_HEIGHT = 240


class FaceDetector:
    """scikit-image's frontal-face LBP cascade; one per thread (it is not thread-safe)."""

    _local = threading.local()

    @classmethod
    def find(cls, image: np.ndarray) -> tuple[int, int, int, int] | None:
        """The largest face in ``image`` (RGB) as (x, y, w, h) in its pixels."""
        cascade = getattr(cls._local, "cascade", None)
        if cascade is None:
            from skimage import data, feature

            cascade = cls._local.cascade = feature.Cascade(data.lbp_frontal_face_cascade_filename())
        scale = DETECT_HEIGHT / image.shape[0]
        small = cv2.resize(image, (round(image.shape[1] * scale), DETECT_HEIGHT), interpolation=cv2.INTER_AREA)
        found = cascade.detect_multi_scale(
            img=small, scale_factor=1.2, step_ratio=1,
            min_size=(DETECT_HEIGHT // 6, DETECT_HEIGHT // 6), max_size=(DETECT_HEIGHT, DETECT_HEIGHT),
        )
        if not found:
            return None
        best = max(found, key=lambda d: d["width"] * d["height"])
        return (round(best["c"] / scale), round(best["r"] / scale),
                round(best["width"] / scale), round(best["height"] / scale))


class FacePresenceBot(Bot):
    video_fps = 2
    CONFIRM = 2

    def __init__(self) -> None:
        # The latest box per call, read by the drawing callback (a worker thread).
        self._boxes: dict[str, tuple[int, int, int, int] | None] = {}
        # (time, face present) of the previous look, per call.
        self._last: dict[str, tuple[float, bool]] = {}
        # Looks in a row that disagree with the current state, per call: a
        # change counts after CONFIRM of them, so one missed look (motion
        # blur, a compression artefact) does not flip the state.
        self._doubt: dict[str, int] = {}

    async def on_call(self, call: Call) -> None:
        call.meta["face"] = {"seconds_with": 0.0, "seconds_without": 0.0, "changes": []}
        self._boxes[call.id] = None
        call.send_video(lambda frame: self._draw(call.id, frame))  # runs in the worker pool
        call.echo("audio")

    def _draw(self, call_id: str, frame: av.VideoFrame) -> av.VideoFrame | None:
        box = self._boxes.get(call_id)
        if box is None:
            return None  # send the frame as it came
        image = frame.to_ndarray(format="bgr24")
        x, y, w, h = box
        cv2.rectangle(image, (x, y), (x + w, y + h), (0, 255, 0), max(2, image.shape[0] // 120))
        return av.VideoFrame.from_ndarray(image, format="bgr24")

    async def on_video_frame(self, call: Call, frame: av.VideoFrame) -> None:
        image = frame.to_ndarray(format="rgb24")
        box = await call.to_thread(FaceDetector.find, image)
        if box is not None:
            self._boxes[call.id] = box
        t = float(frame.pts * frame.time_base)
        seen = box is not None
        face = call.meta["face"]
        last = self._last.get(call.id)
        present = seen if last is None else last[1]
        if last is not None and seen != last[1]:
            self._doubt[call.id] = self._doubt.get(call.id, 0) + 1
            if self._doubt[call.id] >= self.CONFIRM:
                present = seen
        else:
            self._doubt[call.id] = 0
        if last is not None:
            key = "seconds_with" if last[1] else "seconds_without"
            face[key] = round(face[key] + max(0.0, t - last[0]), 3)
        if last is None or last[1] != present:
            self._doubt[call.id] = 0
            face["changes"].append({"t": round(t, 3), "face": present})
            call.send("face in view" if present else "no face in view")
        if not present:
            self._boxes[call.id] = None
        self._last[call.id] = (t, present)

    async def on_ended(self, call: Call, summary: CallSummary) -> None:
        self._last.pop(call.id, None)
        self._boxes.pop(call.id, None)
        self._doubt.pop(call.id, None)
