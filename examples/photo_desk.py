"""A photo desk: looks at each photo the caller sends and answers it.

For every photo: refuses it if it is smaller than 200x200 pixels (the caller
gets ``photo-error`` with code ``too-small`` and a reason), otherwise answers
on the app data channel with its dimensions, its dominant colour and any QR
code in it, and sends back an annotated copy over the same photo protocol
(the caller confirms it with ``photo-saved``, as the bot does for theirs)::

    scripts/serve --bot examples.photo_desk:PhotoDeskBot
"""

from __future__ import annotations

import cv2
import numpy as np

from examples.qr_reader import read_qr
from peer import Bot, Call, Photo, RefusePhoto

MIN_SIDE = 200

#: Names for the dominant colour (BGR).
PALETTE = {
    "black": (0, 0, 0), "white": (255, 255, 255), "grey": (128, 128, 128),
    "red": (0, 0, 220), "green": (0, 180, 0), "blue": (220, 0, 0),
    "yellow": (0, 220, 220), "orange": (0, 140, 255), "purple": (160, 0, 160),
    "brown": (30, 70, 120), "pink": (180, 120, 255), "cyan": (220, 220, 0),
}


def dominant_colour(image: np.ndarray) -> tuple[str, str]:
    """The most common colour of ``image`` (BGR): its name and ``#rrggbb``."""
    small = cv2.resize(image, (64, 64), interpolation=cv2.INTER_AREA).reshape(-1, 3).astype(np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 1.0)
    _, labels, centres = cv2.kmeans(small, 3, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    b, g, r = (int(v) for v in centres[np.bincount(labels.ravel()).argmax()])
    name = min(PALETTE, key=lambda n: sum((a - c) ** 2 for a, c in zip(PALETTE[n], (b, g, r))))
    return name, f"#{r:02x}{g:02x}{b:02x}"


def describe_and_annotate(data: bytes) -> tuple[str, bytes]:
    """A sentence about the photo, and a JPEG copy with it written on."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    h, w = image.shape[:2]
    name, hex_colour = dominant_colour(image)
    qr = read_qr(image)
    text = f"{w}x{h}, mostly {name} ({hex_colour})" + (f", QR: {qr}" if qr else ", no QR code")
    scale = max(0.5, w / 1000)
    cv2.rectangle(image, (0, 0), (w, int(48 * scale)), (0, 0, 0), -1)
    cv2.putText(image, text, (int(10 * scale), int(34 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), max(1, int(2 * scale)), cv2.LINE_AA)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 88])
    assert ok
    return text, jpeg.tobytes()


class PhotoDeskBot(Bot):
    async def check_photo(self, call: Call, photo: Photo) -> None:
        if min(photo.width, photo.height) < MIN_SIDE:
            raise RefusePhoto(
                f"{photo.width}x{photo.height} is too small: send at least {MIN_SIDE}x{MIN_SIDE}", "too-small"
            )

    async def on_photo(self, call: Call, photo: Photo) -> None:
        text, annotated = await call.to_thread(describe_and_annotate, photo.data)
        call.send(f"{photo.name or 'photo'}: {text}")
        call.meta.setdefault("photos", []).append({"name": photo.name, "said": text})
        await call.send_photo(annotated, mime="image/jpeg", name=f"desk-{photo.name or 'photo'}.jpg")
