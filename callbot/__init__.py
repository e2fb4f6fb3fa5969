"""callbot: a WebRTC endpoint that browsers call.

Data flows one way: browser -> signaling -> peer (the aiortc bot) -> media
(recording, sampled frames, photos) -> disk.
"""
