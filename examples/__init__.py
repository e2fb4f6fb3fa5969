"""Runnable example bots, written on the public bot API (``peer.Bot``).

    scripts/serve --bot examples.qr_reader:QrReaderBot
    scripts/serve --bot examples.face_presence:FacePresenceBot
    scripts/serve --bot examples.photo_desk:PhotoDeskBot
"""
