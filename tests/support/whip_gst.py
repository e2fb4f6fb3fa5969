#!/usr/bin/python3
"""A WHIP publisher built on GStreamer 1.22's webrtcbin (Debian 12), driven
through gi: VP8 + Opus from test sources, trickle ICE with PATCH.

    /usr/bin/python3 tests/support/whip_gst.py http://127.0.0.1:8080/whip --seconds 5 [--token JWT]

Runs under Debian's /usr/bin/python3 (python3-gi and the gir1.2-* packages
that scripts/test installs), not the project's venv, and uses only the
standard library besides gi. Both transceivers are sendonly, bundle-policy
max-bundle. The WHIP flow (RFC 9725):

* the offer is POSTed as soon as it is created (no candidates in it yet);
* local candidates are trickled with PATCH application/trickle-ice-sdpfrag
  carrying If-Match with the session's ETag (buffered until the Location
  is known);
* a last PATCH carries a=end-of-candidates when gathering completes
  (webrtcbin emits no empty candidate);
* DELETE on the resource at the end.

HTTP runs on one worker thread (in order, never blocking the GLib loop).
ICE is restricted to 127.0.0.1 (NiceAgent.add_local_address), because libnice
never gathers loopback addresses by itself; ``--ice-address`` names another.

Exit code 0: published for the whole duration; 2: failure. Stdout: ``KEY
value`` lines.
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("Nice", "0.1")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC, Nice  # noqa: E402

PIPELINE = """
webrtcbin name=webrtc bundle-policy=max-bundle
videotestsrc is-live=true pattern=ball
 ! video/x-raw,width={width},height={height},framerate=30/1 ! videoconvert
 ! vp8enc deadline=1 keyframe-max-dist=30 target-bitrate={bitrate} cpu-used=8 threads=2
 ! rtpvp8pay pt=96 mtu=1200
 ! application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000
 ! webrtc.
audiotestsrc is-live=true wave=sine
 ! audioconvert ! audioresample ! opusenc
 ! rtpopuspay pt=111
 ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000
 ! webrtc.
"""


_OUT_LOCK = threading.Lock()


def out(key: str, value: str = "") -> None:
    """One whole line per report: GStreamer's threads report at once, and
    print() writes the text and its newline separately (two reports could
    share a line, which the tests then misread)."""
    with _OUT_LOCK:
        sys.stdout.write(f"{key} {value}".rstrip() + "\n")
        sys.stdout.flush()


class WhipClient:
    def __init__(self, url: str, seconds: float, *, width: int, height: int, bitrate: int,
                 token: str | None, ice_address: str) -> None:
        self.url = url
        self.seconds = seconds
        self.token = token
        self.etag: str | None = None
        self.loop = GLib.MainLoop()
        self.pipe = Gst.parse_launch(PIPELINE.format(width=width, height=height, bitrate=bitrate))
        self.webrtc = self.pipe.get_by_name("webrtc")
        self.resource: str | None = None
        self.ufrag = self.pwd = ""
        self.mids: dict[int, str] = {}
        self.mlines: dict[int, str] = {}
        self.pending: list[tuple[int, str]] = []  # candidates before Location
        self.http: "queue.Queue" = queue.Queue()
        self.rc = 2
        self.t0 = time.monotonic()
        self.lock = threading.Lock()

        # ICE on loopback only.  Keep the ice-agent wrapper alive for the whole
        # run: GstWebRTCNice is a still-floating GstObject, pygobject 3.42
        # sinks the floating ref webrtcbin owns when wrapping it, so dropping
        # the wrapper frees webrtcbin's ICE agent (-> CRITICALs + SIGSEGV).
        self.ice = self.webrtc.get_property("ice-agent")
        self.nice = self.ice.get_property("agent")
        addr = Nice.Address.new()
        addr.set_from_string(ice_address)
        self.nice.add_local_address(addr)

        self.webrtc.connect("on-negotiation-needed", self.on_negotiation_needed)
        self.webrtc.connect("on-ice-candidate", self.on_ice_candidate)
        self.webrtc.connect("notify::ice-gathering-state", self.on_gathering)
        self.webrtc.connect("notify::connection-state", self.on_conn_state)
        bus = self.pipe.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self.on_error)
        threading.Thread(target=self.http_worker, daemon=True).start()

    # --- signalling -------------------------------------------------------
    def ms(self) -> int:
        return round((time.monotonic() - self.t0) * 1000)

    def on_negotiation_needed(self, webrtc) -> None:
        for i in range(2):
            tr = webrtc.emit("get-transceiver", i)
            if tr is not None:
                tr.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
        promise = Gst.Promise.new_with_change_func(self.on_offer, None)
        webrtc.emit("create-offer", None, promise)

    def on_offer(self, promise, _data) -> None:
        promise.wait()
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply is not None else None
        if offer is None:
            out("ERROR", "create-offer failed")
            GLib.idle_add(self.finish, 2)
            return
        self.webrtc.emit("set-local-description", offer, Gst.Promise.new())
        sdp = offer.sdp.as_text()
        for line in sdp.splitlines():
            if line.startswith("a=ice-ufrag:") and not self.ufrag:
                self.ufrag = line.split(":", 1)[1]
            elif line.startswith("a=ice-pwd:") and not self.pwd:
                self.pwd = line.split(":", 1)[1]
        mline = -1
        for line in sdp.splitlines():
            if line.startswith("m="):
                mline += 1
                self.mlines[mline] = line
            elif line.startswith("a=mid:"):
                self.mids[mline] = line.split(":", 1)[1]
        self.http.put(("POST", sdp))

    def on_ice_candidate(self, webrtc, mline: int, candidate: str) -> None:
        out("CANDIDATE", f"{self.ms()}ms mline={mline} {candidate!r}")
        with self.lock:
            if self.resource is None:
                self.pending.append((mline, candidate))
                return
        self.http.put(("PATCH", [(mline, candidate)]))

    def on_gathering(self, webrtc, _pspec) -> None:
        state = webrtc.get_property("ice-gathering-state")
        out("GATHERING", f"{self.ms()}ms {state.value_nick}")
        if state == GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            self.http.put(("PATCH", "end"))

    def on_conn_state(self, webrtc, _pspec) -> None:
        state = webrtc.get_property("connection-state")
        out("CONNECTION", f"{self.ms()}ms {state.value_nick}")
        if state == GstWebRTC.WebRTCPeerConnectionState.CONNECTED and self.rc == 2:
            # publish for the requested duration, then stop
            GLib.timeout_add(int(self.seconds * 1000), self.finish, 0)
        elif state == GstWebRTC.WebRTCPeerConnectionState.FAILED:
            GLib.idle_add(self.finish, 2)

    def on_error(self, _bus, msg) -> None:
        err, dbg = msg.parse_error()
        out("ERROR", f"{err.message} {dbg}")
        GLib.idle_add(self.finish, 2)

    def finish(self, rc: int) -> bool:
        self.rc = rc
        self.loop.quit()
        return False

    # --- HTTP (worker thread) --------------------------------------------
    def frag(self, cands) -> str:
        lines = [f"a=ice-ufrag:{self.ufrag}", f"a=ice-pwd:{self.pwd}"]
        by_mline: dict[int, list[str]] = {}
        for mline, c in cands:
            by_mline.setdefault(mline, []).append(c)
        for mline, cs in sorted(by_mline.items()):
            lines += [self.mlines[mline], f"a=mid:{self.mids[mline]}"]
            lines += [f"a={c}" if not c.startswith("a=") else c for c in cs if c]
        return "\r\n".join(lines) + "\r\n"

    def end_frag(self) -> str:
        # with max-bundle everything runs on the first m-line's transport
        return (f"a=ice-ufrag:{self.ufrag}\r\na=ice-pwd:{self.pwd}\r\n"
                f"{self.mlines[0]}\r\na=mid:{self.mids[0]}\r\n"
                "a=end-of-candidates\r\n")

    def request(self, method: str, url: str, body: str | None, ctype: str | None):
        req = urllib.request.Request(url, data=body.encode() if body else None, method=method)
        if ctype:
            req.add_header("Content-Type", ctype)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        if method == "PATCH" and self.etag:
            req.add_header("If-Match", self.etag)  # RFC 9725 section 4.3.1
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read().decode()

    def http_worker(self) -> None:
        while True:
            method, arg = self.http.get()
            try:
                if method == "POST":
                    status, headers, answer = self.request("POST", self.url, arg, "application/sdp")
                    out("POST", f"{self.ms()}ms status={status} location={headers['Location']}")
                    self.etag = headers.get("ETag")
                    res, msg = GstSdp.SDPMessage.new_from_text(answer)
                    desc = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, msg)
                    self.webrtc.emit("set-remote-description", desc, Gst.Promise.new())
                    with self.lock:
                        self.resource = urllib.parse.urljoin(self.url, headers["Location"])
                        pending, self.pending = self.pending, []
                    if pending:
                        self.http.put(("PATCH", pending))
                elif method == "PATCH":
                    if self.resource is None:  # end-of-candidates before the answer
                        self.http.put((method, arg))
                        continue
                    body = self.end_frag() if arg == "end" else self.frag(arg)
                    status, _, _ = self.request("PATCH", self.resource, body,
                                                "application/trickle-ice-sdpfrag")
                    out("PATCH", f"{self.ms()}ms status={status} candidates={body.count('a=candidate:')}"
                                 f" end={'a=end-of-candidates' in body}")
                elif method == "DELETE":
                    out("ELAPSED_MS", self.ms())  # media ran from about t0 to here
                    status, _, _ = self.request("DELETE", self.resource, None, None)
                    out("DELETE", f"status={status}")
                    arg.set()
            except urllib.error.HTTPError as exc:
                out("HTTP_ERROR", f"{method} {exc.code} {exc.read().decode(errors='replace')}")
                GLib.idle_add(self.finish, 2)
                if method == "DELETE":
                    arg.set()
            except (urllib.error.URLError, OSError, KeyError) as exc:
                out("HTTP_ERROR", f"{method} {exc!r}")
                GLib.idle_add(self.finish, 2)
                if method == "DELETE":
                    arg.set()

    def run(self) -> int:
        self.pipe.set_state(Gst.State.PLAYING)
        # hard limit: give up if not connected and finished in time
        GLib.timeout_add(int((self.seconds + 20) * 1000), self.finish, 2)
        self.loop.run()
        if self.resource is not None:
            done = threading.Event()
            self.http.put(("DELETE", done))
            done.wait(timeout=10)
        self.pipe.set_state(Gst.State.NULL)
        out("RESULT", "ok" if self.rc == 0 else "failed")
        return self.rc


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--bitrate", type=int, default=500_000, help="VP8 target, bits per second")
    ap.add_argument("--token", default=None, help="bearer token for --auth-secret servers")
    ap.add_argument("--ice-address", default="127.0.0.1", help="the local address libnice gathers from")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    Gst.init(None)
    rc = WhipClient(args.url, args.seconds, width=width, height=height, bitrate=args.bitrate,
                    token=args.token, ice_address=args.ice_address).run()
    sys.stdout.flush()
    # see self.ice above: the over-released ICE agent would emit GLib-CRITICALs
    # during interpreter teardown; skip teardown.
    os._exit(rc)


if __name__ == "__main__":
    main()
