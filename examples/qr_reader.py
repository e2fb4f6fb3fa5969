"""A QR reader: reads QR codes in the caller's video and tells the caller.

Looks at 2 frames a second (the cheap keyframe path: no full decode), runs
OpenCV's QR detector off the event loop, sends each new text to the caller
over the app data channel, and keeps every code it saw in ``meta.json``
(``bot_data.qr_codes``)::

    scripts/serve --bot examples.qr_reader:QrReaderBot
"""

from __future__ import annotations

import cv2
import numpy as np

from peer import Bot, Call


def read_qr(image: np.ndarray) -> str:
    """The text of a QR code in ``image`` (BGR), or "" if there is none."""
    text, _points, _ = cv2.QRCodeDetector().detectAndDecode(image)
    return text or ""


class QrReaderBot(Bot):
    video_fps = 2

    async def on_call(self, call: Call) -> None:
        call.meta["qr_codes"] = []

    async def on_video_frame(self, call: Call, frame) -> None:
        image = frame.to_ndarray(format="bgr24")
        text = await call.to_thread(read_qr, image)  # CPU work off the event loop
        seen = call.meta["qr_codes"]
        if text and (not seen or seen[-1]["text"] != text):
            seen.append({"text": text, "t": round(frame.pts * frame.time_base, 3)})
            call.send(f"QR: {text}")
