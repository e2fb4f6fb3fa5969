"""Debian's Firefox ESR, headless, driven over WebDriver BiDi (asyncio + aiohttp;
no geckodriver, no Playwright build of Firefox).

    async with FirefoxBiDi() as ff:              # spawn, connect, session.new
        ctx = await ff.new_context()             # browsingContext.create
        await ff.navigate(ctx, server.url)
        await ff.fill(ctx, "#username", "ann")
        await ff.click(ctx, "#login-button")
        await ff.wait_for(ctx, "document.querySelector('#me-name').textContent === 'ann'")
    # -> browser.close, the process group killed, the profile removed

Firefox is started with ``--remote-debugging-port 0`` and prints the BiDi
WebSocket URL; the prefs below give it fake media, let ICE gather on
loopback with real addresses, and keep it from calling home (with
``MOZ_REMOTE_SETTINGS_DEVTOOLS=1``, without which release builds ignore the
remote-settings server pref). No wall-clock sleeps: every wait is an awaited
future or event bounded by a timeout; in the page, :meth:`FirefoxBiDi.wait_for`
checks a condition as Playwright's ``wait_for_function`` does.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import logging
import math
import os
import re
import shutil
import signal
import tempfile
import time
from typing import Any, Awaitable, Callable, Iterable, Mapping

import aiohttp

log = logging.getLogger(__name__)

FIREFOX = os.environ.get("CALLBOT_FIREFOX", "/usr/bin/firefox-esr")
_LISTEN_RE = re.compile(rb"WebDriver BiDi listening on (ws://[^\s]+)")

# Prefs needed for WebRTC with fake devices in a loopback-only network namespace.
WEBRTC_PREFS: dict[str, Any] = {
    "media.navigator.streams.fake": True,           # synthetic camera/mic
    "media.navigator.permission.disabled": True,    # no permission prompt
    # Makes gUM count as "granted", which is what lets ICE gather on *all*
    # interfaces (otherwise only the default-route address; lo-only netns has none).
    "media.navigator.permission.fake": True,
    "media.peerconnection.ice.loopback": True,      # allow 127.0.0.1 / ::1 candidates
    "media.peerconnection.ice.obfuscate_host_addresses": False,  # no mDNS .local names
    "media.autoplay.default": 0,                    # allow <video autoplay>
    "media.autoplay.blocking_policy": 0,
    # OpenH264 cannot be downloaded here; don't even try.
    "media.gmp-manager.updateEnabled": False,
    "media.gmp-manager.url": "",
    "media.gmp-gmpopenh264.autoupdate": False,
    "media.gmp-gmpopenh264.enabled": False,
}

# Keep Firefox quiet on a closed network (most also applied at runtime by the
# remote agent's RecommendedPreferences, but user.js makes them effective from
# the very first startup instant).
QUIET_PREFS: dict[str, Any] = {
    # first run / UI
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.startup.page": 0,
    "browser.startup.homepage": "about:blank",
    "startup.homepage_welcome_url": "about:blank",
    "startup.homepage_welcome_url.additional": "",
    "browser.aboutwelcome.enabled": False,
    "browser.newtabpage.enabled": False,
    "browser.newtabpage.activity-stream.feeds.system.topstories": False,
    "browser.newtabpage.activity-stream.feeds.section.topstories": False,
    "browser.newtabpage.activity-stream.feeds.telemetry": False,
    "browser.newtabpage.activity-stream.telemetry": False,
    "browser.newtabpage.activity-stream.showSponsored": False,
    "browser.newtabpage.activity-stream.showSponsoredTopSites": False,
    "browser.newtabpage.activity-stream.testing.shouldInitializeFeeds": False,
    "browser.topsites.contile.enabled": False,
    "browser.tabs.warnOnClose": False,
    "browser.warnOnQuit": False,
    "browser.sessionstore.resume_from_crash": False,
    "toolkit.startup.max_resumed_crashes": -1,
    "browser.uitour.enabled": False,
    "browser.discovery.enabled": False,
    "browser.translations.enable": False,
    "browser.ml.enable": False,
    "browser.backup.enabled": False,
    "browser.backup.scheduled.enabled": False,
    "browser.pagethumbnails.capturing_disabled": True,
    "termsofuse.bypassNotification": True,
    # updates
    "app.update.disabledForTesting": True,
    "app.update.auto": False,
    "app.update.checkInstallTime": False,
    "extensions.update.enabled": False,
    "extensions.systemAddon.update.enabled": False,
    "extensions.getAddons.cache.enabled": False,
    "extensions.getAddons.discovery.api_url": "data:, ",
    "extensions.blocklist.enabled": False,
    "general.useragent.updates.enabled": False,
    "browser.search.update": False,
    "browser.region.network.url": "",
    "browser.region.update.enabled": False,
    # telemetry / studies / experiments / remote settings
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.policy.dataSubmissionPolicyBypassNotification": True,
    "datareporting.healthreport.uploadEnabled": False,
    "datareporting.usage.uploadEnabled": False,
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.unified": False,
    "toolkit.telemetry.server": "",
    "toolkit.telemetry.archive.enabled": False,
    "toolkit.telemetry.newProfilePing.enabled": False,
    "toolkit.telemetry.shutdownPingSender.enabled": False,
    "toolkit.telemetry.firstShutdownPing.enabled": False,
    "toolkit.telemetry.updatePing.enabled": False,
    "toolkit.telemetry.bhrPing.enabled": False,
    "telemetry.fog.test.localhost_port": -1,
    "app.normandy.enabled": False,
    "app.normandy.api_url": "",
    "app.shield.optoutstudies.enabled": False,
    "messaging-system.rsexperimentloader.enabled": False,
    "services.settings.server": "data:,#remote-settings-dummy/v1",
    "services.settings.loglevel": "off",
    "security.remote_settings.intermediates.enabled": False,
    "security.remote_settings.crlite_filters.enabled": False,
    "browser.ping-centre.telemetry": False,
    # network probes
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "captivedetect.canonicalURL": "",
    "network.manage-offline-status": False,
    "network.proxy.type": 0,                 # no WPAD / system proxy lookup
    "network.trr.mode": 5,                   # DNS-over-HTTPS off
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
    "network.http.speculative-parallel-limit": 0,
    "browser.urlbar.speculativeConnect.enabled": False,
    "browser.urlbar.suggest.searches": False,
    "browser.urlbar.merino.endpointURL": "",
    "security.OCSP.enabled": 0,
    "security.certerrors.mitm.priming.enabled": False,
    "dom.push.connection.enabled": False,
    "dom.push.serverURL": "",
    "identity.fxaccounts.enabled": False,
    "geo.provider.network.url": "",
    "geo.wifi.scan": False,
    # safebrowsing
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.downloads.remote.enabled": False,
    "browser.safebrowsing.blockedURIs.enabled": False,
    "browser.safebrowsing.passwords.enabled": False,
    "browser.safebrowsing.update.enabled": False,
    "browser.safebrowsing.provider.google.updateURL": "",
    "browser.safebrowsing.provider.google4.updateURL": "",
    "browser.safebrowsing.provider.mozilla.updateURL": "",
    "signon.rememberSignons": False,
    # misc
    "dom.max_script_run_time": 0,
    "dom.ipc.reportProcessHangs": False,
    "browser.dom.window.dump.enabled": True,
}

DEFAULT_PREFS: dict[str, Any] = {**QUIET_PREFS, **WEBRTC_PREFS}


def user_js(prefs: Mapping[str, Any]) -> str:
    return "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in prefs.items())


class BiDiError(Exception):
    """Error response to a BiDi command ({"type": "error", ...})."""

    def __init__(self, method: str, msg: dict):
        self.method = method
        self.error = msg.get("error")
        self.message = msg.get("message")
        self.stacktrace = msg.get("stacktrace")
        super().__init__(f"{method}: {self.error}: {self.message}")


class JavaScriptError(Exception):
    """script.evaluate / script.callFunction returned type=exception."""

    def __init__(self, details: dict):
        self.details = details
        super().__init__(details.get("text", "JavaScript exception"))


class FirefoxExited(Exception):
    pass


# ---------------------------------------------------------------- value (de)serialization

def to_local_value(v: Any) -> dict:
    """Python value -> BiDi script.LocalValue."""
    if v is None:
        return {"type": "null"}
    if isinstance(v, bool):
        return {"type": "boolean", "value": v}
    if isinstance(v, int):
        if abs(v) > 2**53:
            return {"type": "bigint", "value": str(v)}
        return {"type": "number", "value": v}
    if isinstance(v, float):
        if math.isnan(v):
            return {"type": "number", "value": "NaN"}
        if math.isinf(v):
            return {"type": "number", "value": "Infinity" if v > 0 else "-Infinity"}
        return {"type": "number", "value": v}
    if isinstance(v, str):
        return {"type": "string", "value": v}
    if isinstance(v, (list, tuple)):
        return {"type": "array", "value": [to_local_value(x) for x in v]}
    if isinstance(v, Mapping):
        if "handle" in v or "sharedId" in v:  # already a remote reference
            return dict(v)
        return {"type": "object", "value": [[str(k), to_local_value(x)] for k, x in v.items()]}
    raise TypeError(f"cannot serialize {type(v).__name__} to BiDi LocalValue")


_SPECIAL_NUMBERS = {"NaN": math.nan, "-0": -0.0, "Infinity": math.inf, "-Infinity": -math.inf}


def from_remote_value(rv: dict) -> Any:
    """BiDi script.RemoteValue -> Python (objects -> dict, arrays -> list).
    Non-serializable things (nodes, functions, ...) come back as the raw dict."""
    t = rv.get("type")
    if t in ("undefined", "null"):
        return None
    if t in ("string", "boolean"):
        return rv["value"]
    if t == "number":
        v = rv["value"]
        return _SPECIAL_NUMBERS.get(v, v) if isinstance(v, str) else v
    if t == "bigint":
        return int(rv["value"])
    if t in ("array", "set"):
        if "value" not in rv:  # beyond maxObjectDepth
            return rv
        return [from_remote_value(x) for x in rv["value"]]
    if t in ("object", "map"):
        if "value" not in rv:
            return rv
        out = {}
        for k, x in rv["value"]:
            key = k if isinstance(k, str) else json.dumps(from_remote_value(k))
            out[key] = from_remote_value(x)
        return out
    if t == "date":
        return rv["value"]
    return rv


def _crashhelpers_of(firefox_pid: int) -> list[int]:
    """Firefox >= 13x spawns `crashhelper <firefox-pid> ...` in a separate session,
    so killpg() does not reach it. Find the one(s) belonging to *our* firefox."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if len(argv) > 1 and argv[0].endswith(b"crashhelper") and argv[1] == str(firefox_pid).encode():
            out.append(int(d))
    return out


# ---------------------------------------------------------------- the driver

class FirefoxBiDi:
    def __init__(
        self,
        binary: str = FIREFOX,
        *,
        prefs: Mapping[str, Any] | None = None,
        extra_prefs: Mapping[str, Any] | None = None,
        port: int = 0,
        headless: bool = True,
        args: Iterable[str] = (),
        env: Mapping[str, str] | None = None,
        startup_timeout: float = 60.0,
        command_timeout: float = 30.0,
        log_lines: int = 500,
        echo_output: bool = False,
    ):
        self.binary = binary
        self.prefs = dict(DEFAULT_PREFS if prefs is None else prefs)
        self.prefs.update(extra_prefs or {})
        self.port = port
        self.headless = headless
        self.args = list(args)
        self.env = dict(os.environ if env is None else env)
        self.startup_timeout = startup_timeout
        self.command_timeout = command_timeout
        self.echo_output = echo_output
        self.output: collections.deque[str] = collections.deque(maxlen=log_lines)

        self.proc: asyncio.subprocess.Process | None = None
        self.profile: str | None = None
        self.ws_url: str | None = None
        self.session_id: str | None = None
        self.capabilities: dict = {}
        self.timings: dict[str, float] = {}

        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[str, asyncio.Future]] = {}
        self._listeners: dict[str, list[Callable[[dict], Any]]] = collections.defaultdict(list)
        self._reader: asyncio.Task | None = None
        self._drain: asyncio.Task | None = None
        self._url_fut: asyncio.Future | None = None

    # ---- lifecycle

    async def __aenter__(self) -> "FirefoxBiDi":
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def start(self) -> None:
        """Launch Firefox, wait for the BiDi URL, connect, session.new."""
        await self.launch()
        await self.connect()
        await self.new_session()

    async def launch(self) -> str:
        self._t0 = t0 = time.monotonic()
        self.profile = tempfile.mkdtemp(prefix="bidi-ff-profile-")
        with open(os.path.join(self.profile, "user.js"), "w") as f:
            f.write(user_js(self.prefs))
        cmd = [self.binary, "--no-remote", "--profile", self.profile,
               "--remote-debugging-port", str(self.port)]
        if self.headless:
            cmd.append("--headless")
        cmd += self.args
        env = dict(self.env)
        if self.headless:
            env["MOZ_HEADLESS"] = "1"
        env.setdefault("MOZ_CRASHREPORTER_DISABLE", "1")
        # Release builds ignore the services.settings.server pref (Remote Settings
        # keeps polling firefox.settings.services.mozilla.com) unless this is set.
        env.setdefault("MOZ_REMOTE_SETTINGS_DEVTOOLS", "1")
        loop = asyncio.get_running_loop()
        self._url_fut = loop.create_future()
        self.proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            start_new_session=True,  # own process group -> killpg on close
        )
        self.timings["spawned"] = time.monotonic() - t0
        self._drain = asyncio.create_task(self._drain_output())
        try:
            self.ws_url = await asyncio.wait_for(asyncio.shield(self._url_fut), self.startup_timeout)
        except asyncio.TimeoutError:
            self._url_fut.cancel()
            raise TimeoutError(
                f"no 'WebDriver BiDi listening' line within {self.startup_timeout}s; "
                "last output:\n" + "\n".join(list(self.output)[-20:])) from None
        self.timings["listening"] = time.monotonic() - t0
        return self.ws_url

    async def _drain_output(self) -> None:
        assert self.proc and self.proc.stdout
        try:
            while True:
                line = await self.proc.stdout.readline()
                if not line:
                    break
                if self._url_fut and not self._url_fut.done():
                    m = _LISTEN_RE.search(line)
                    if m:
                        self._url_fut.set_result(m.group(1).decode())
                text = line.decode(errors="replace").rstrip("\n")
                self.output.append(text)
                if self.echo_output:
                    log.info("firefox: %s", text)
        finally:
            if self._url_fut and not self._url_fut.done():
                rc = await self.proc.wait()
                self._url_fut.set_exception(FirefoxExited(
                    f"firefox exited with {rc} before BiDi was ready:\n"
                    + "\n".join(list(self.output)[-20:])))

    async def connect(self) -> None:
        assert self.ws_url
        self._http = aiohttp.ClientSession()
        # BiDi-only session endpoint is <ws_url>/session
        self._ws = await asyncio.wait_for(
            self._http.ws_connect(self.ws_url.rstrip("/") + "/session",
                                  max_msg_size=0, autoping=True),
            self.startup_timeout)
        self._reader = asyncio.create_task(self._read_loop())
        self.timings["connected"] = time.monotonic() - self._t0

    async def new_session(self, capabilities: Mapping[str, Any] | None = None) -> dict:
        caps = {"alwaysMatch": {"acceptInsecureCerts": True,
                                "unhandledPromptBehavior": {"default": "dismiss"},
                                **(capabilities or {})}}
        # Firefox answers only after "browser-idle-startup-tasks-finished" (~2 s here)
        res = await self.send("session.new", {"capabilities": caps}, timeout=self.startup_timeout)
        self.session_id = res["sessionId"]
        self.capabilities = res.get("capabilities", {})
        self.timings["session"] = time.monotonic() - self._t0
        return res

    async def close(self, timeout: float = 10.0) -> None:
        """browser.close, then make sure the whole process group is gone and the
        profile is deleted. Safe to call more than once / after partial start."""
        if self._ws is not None and not self._ws.closed and self.session_id:
            with contextlib.suppress(Exception):
                await self.send("browser.close", {}, timeout=timeout)
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), timeout)
        if self._reader:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        if self._http is not None:
            await self._http.close()
        self._fail_pending(ConnectionError("connection closed"))
        if self.proc is not None:
            await self._stop_process(timeout)
        if self._drain:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self._drain, timeout)
        if self.profile:
            shutil.rmtree(self.profile, ignore_errors=True)
            self.profile = None
        self._ws = self._http = self._reader = self._drain = None
        self.session_id = None

    async def _stop_process(self, timeout: float) -> None:
        proc = self.proc
        pgid = proc.pid  # start_new_session=True -> pgid == pid
        helpers = _crashhelpers_of(proc.pid)  # double-forked into its own session
        # 1) main process: graceful exit after browser.close, else SIGTERM, else SIGKILL
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if proc.returncode is not None:
                break
            if sig is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, sig)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(proc.wait(), timeout)
        # 2) any stragglers of *our* group (content processes, crashhelper ...)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        for pid in helpers:  # normally already exited together with firefox
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        self.returncode = proc.returncode

    # ---- protocol

    async def _read_loop(self) -> None:
        assert self._ws
        try:
            async for msg in self._ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    if msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE):
                        break
                    continue
                data = json.loads(msg.data)
                mid = data.get("id")
                if mid is not None and mid in self._pending:
                    method, fut = self._pending.pop(mid)
                    if fut.done():
                        continue
                    if data.get("type") == "error":
                        fut.set_exception(BiDiError(method, data))
                    else:
                        fut.set_result(data.get("result", {}))
                elif data.get("type") == "event":
                    self._dispatch(data["method"], data.get("params", {}))
                elif data.get("type") == "error":
                    log.warning("unattributed BiDi error: %s", data)
        finally:
            self._fail_pending(ConnectionError("BiDi websocket closed"))

    def _fail_pending(self, exc: Exception) -> None:
        for _, fut in self._pending.values():
            if not fut.done():
                fut.set_exception(exc)
        self._pending.clear()

    def _dispatch(self, method: str, params: dict) -> None:
        for key in (method, method.split(".")[0], "*"):
            for cb in list(self._listeners.get(key, ())):
                try:
                    r = cb({"method": method, **params} if key != method else params)
                    if asyncio.iscoroutine(r):
                        asyncio.ensure_future(r)
                except Exception:
                    log.exception("listener for %s failed", method)

    async def send(self, method: str, params: Mapping[str, Any] | None = None,
                   timeout: float | None = None) -> dict:
        if self._ws is None or self._ws.closed:
            raise ConnectionError("not connected")
        mid = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._pending[mid] = (method, fut)
        await self._ws.send_str(json.dumps({"id": mid, "method": method, "params": dict(params or {})}))
        try:
            return await asyncio.wait_for(fut, timeout or self.command_timeout)
        finally:
            self._pending.pop(mid, None)

    # ---- events

    def on(self, event: str, callback: Callable[[dict], Any]) -> Callable[[], None]:
        """Register a listener (exact method, module name like "log", or "*").
        Returns a function that unregisters it. Remember to session.subscribe."""
        self._listeners[event].append(callback)
        return lambda: self._listeners[event].remove(callback)

    async def subscribe(self, events: list[str], contexts: list[str] | None = None) -> dict:
        params: dict[str, Any] = {"events": events}
        if contexts:
            params["contexts"] = contexts
        return await self.send("session.subscribe", params)

    async def wait_for_event(self, event: str, predicate: Callable[[dict], bool] = lambda p: True,
                             timeout: float = 30.0) -> dict:
        fut = asyncio.get_running_loop().create_future()

        def cb(params):
            if not fut.done() and predicate(params):
                fut.set_result(params)

        off = self.on(event, cb)
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            off()

    def collect_console(self) -> list[dict]:
        """Collect log.entryAdded params into a list (call subscribe(["log.entryAdded"]))."""
        entries: list[dict] = []
        self.on("log.entryAdded", entries.append)
        return entries

    # ---- browsing contexts / script

    async def get_tree(self) -> list[dict]:
        return (await self.send("browsingContext.getTree", {}))["contexts"]

    async def default_context(self) -> str:
        """The top-level tab Firefox opened at startup."""
        return (await self.get_tree())[0]["context"]

    async def new_context(self, type_: str = "tab") -> str:
        res = await self.send("browsingContext.create", {"type": type_})
        return res["context"]

    async def close_context(self, context: str) -> None:
        await self.send("browsingContext.close", {"context": context})

    async def navigate(self, context: str, url: str, wait: str = "complete",
                       timeout: float | None = None) -> dict:
        return await self.send("browsingContext.navigate",
                               {"context": context, "url": url, "wait": wait}, timeout=timeout)

    async def evaluate(self, context: str, expression: str, *, await_promise: bool = True,
                       timeout: float | None = None, raw: bool = False,
                       max_depth: int = 32) -> Any:
        res = await self.send("script.evaluate", {
            "expression": expression,
            "target": {"context": context},
            "awaitPromise": await_promise,
            "resultOwnership": "none",
            "serializationOptions": {"maxObjectDepth": max_depth},
        }, timeout=timeout)
        return self._script_result(res, raw)

    async def call_function(self, context: str, function_declaration: str, *args: Any,
                            await_promise: bool = True, timeout: float | None = None,
                            raw: bool = False, max_depth: int = 32) -> Any:
        res = await self.send("script.callFunction", {
            "functionDeclaration": function_declaration,
            "arguments": [to_local_value(a) for a in args],
            "target": {"context": context},
            "awaitPromise": await_promise,
            "resultOwnership": "none",
            "serializationOptions": {"maxObjectDepth": max_depth},
        }, timeout=timeout)
        return self._script_result(res, raw)

    @staticmethod
    def _script_result(res: dict, raw: bool) -> Any:
        if res.get("type") == "exception":
            raise JavaScriptError(res.get("exceptionDetails", {}))
        return res["result"] if raw else from_remote_value(res["result"])

    # ---- page helpers (the page's own DOM; no test code is injected)

    async def wait_for(self, context: str, expression: str, timeout: float = 30.0) -> Any:
        """The first truthy value of ``expression`` in the page, checked on
        every animation frame (and every 50 ms when frames are throttled)."""
        declaration = (
            "(ms) => new Promise((resolve, reject) => {"
            " const t0 = performance.now(); let last;"
            f" const check = () => {{ try {{ const v = ({expression}); if (v) return resolve(v); }}"
            " catch (e) { last = e; }"
            " if (performance.now() - t0 > ms) return reject(new Error("
            f"'condition not met within ' + ms + ' ms: ' + {json.dumps(expression)} + (last ? ' (' + last + ')' : '')));"
            " requestAnimationFrame(() => setTimeout(check, 0)); };"
            " check(); })"
        )
        return await self.call_function(context, declaration, timeout * 1000, timeout=timeout + 5)

    async def click(self, context: str, selector: str) -> None:
        await self.call_function(
            context, "(sel) => { const el = document.querySelector(sel);"
            " if (!el) throw new Error('no element ' + sel); el.click(); }", selector)

    async def fill(self, context: str, selector: str, value: str) -> None:
        await self.call_function(
            context, "(sel, value) => { const el = document.querySelector(sel);"
            " if (!el) throw new Error('no element ' + sel); el.value = value;"
            " el.dispatchEvent(new Event('input', {bubbles: true})); }", selector, value)

    async def attribute(self, context: str, selector: str, name: str) -> Any:
        return await self.call_function(
            context, "(sel, name) => { const el = document.querySelector(sel);"
            " return el ? el.getAttribute(name) : null; }", selector, name)

    async def video_frames(self, context: str, selector: str, frames: int, timeout: float = 30.0) -> dict:
        """Wait until the <video> has presented ``frames`` more frames (counted
        with requestVideoFrameCallback: Firefox's getVideoPlaybackQuality()
        stays at 0 for a MediaStream)."""
        return await self.call_function(
            context,
            "(sel, n, ms) => new Promise((resolve, reject) => {"
            " const v = document.querySelector(sel); if (!v) return reject(new Error('no ' + sel));"
            " let count = 0; const guard = setTimeout(() => reject(new Error(count + ' of ' + n + ' frames in ' + ms + ' ms')), ms);"
            " const cb = () => { count++; if (count >= n) { clearTimeout(guard);"
            " resolve({frames: count, width: v.videoWidth, height: v.videoHeight}); }"
            " else v.requestVideoFrameCallback(cb); };"
            " v.requestVideoFrameCallback(cb); })",
            selector, frames, timeout * 1000, timeout=timeout + 5)
