"""Real NATs for ICE tests, made of Linux network namespaces this module creates.

Every namespace's name carries a prefix unique to the test (process id and
random hex), and none is linked to the namespace the tests run in, so no
packet can leave: the addresses below exist only inside them. Leaving the
``with`` block (or a failure while building) kills the processes started in
them, by PID, and deletes the namespaces, which deletes their veths and
iptables rules too. Needs root (``scripts/test`` runs pytest as root inside
``unshare -n``, where ``ip netns add`` works), iproute2 and iptables.

Layout::

    "internet": namespace wan, bridge br0 198.51.100.254/24 (TEST-NET-2,
    RFC 5737), no forwarding, so private destinations are unroutable as on
    the internet.

      router  wan0 198.51.100.1 (the bot's public address)  lan0 10.77.1.1/24 -- bot eth0 10.77.1.2
      caller  wan0 198.51.100.2                               (caller_nat=False: a public caller)
      crouter wan0 198.51.100.3  lan0 10.77.2.1/24 -- caller eth0 10.77.2.2  (caller_nat=True)
      turn    wan0 198.51.100.4                               (turn=True: for coturn)

The bot's router (``bot_nat``) maps 10.77.1.0/24 to 198.51.100.1 (SNAT)
and drops unsolicited inbound packets, except what it forwards to the bot:
tcp/``http_port`` always, and udp/``rtc_ports`` with ``bot_nat="forward"``
(a 1:1 NAT such as a cloud VM's; ``"masquerade"`` forwards no UDP). The
caller's router forwards nothing. Linux NAT keeps a source port when it is
free (endpoint-independent mapping in practice) and lets in only replies to
what went out (address- and port-dependent filtering, RFC 4787 section 5),
like most home routers.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import subprocess
from typing import Any

WAN = "198.51.100"
WAN_GATEWAY = f"{WAN}.254"
BOT_PUBLIC = f"{WAN}.1"
CALLER_PUBLIC = f"{WAN}.2"
CROUTER_PUBLIC = f"{WAN}.3"
TURN_PUBLIC = f"{WAN}.4"
BOT_LAN = "10.77.1"
CALLER_LAN = "10.77.2"
HTTP_PORT = 8080
RTC_PORTS = (40000, 40099)


def _run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def missing_requirements() -> str | None:
    """Why network-namespace tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "network-namespace tests need root (scripts/test runs them as root inside unshare -n)"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (scripts/test installs iproute2 and iptables)"
    return None


class Topology:
    """The namespaces of the module docstring, for one test."""

    def __init__(self, *, bot_nat: str = "forward", caller_nat: bool = False, turn: bool = False,
                 rtc_ports: tuple[int, int] = RTC_PORTS, http_port: int = HTTP_PORT) -> None:
        if bot_nat not in ("forward", "masquerade"):
            raise ValueError("bot_nat is 'forward' or 'masquerade'")
        self.bot_nat = bot_nat
        self.caller_nat = caller_nat
        self.turn = turn
        self.rtc_ports = rtc_ports
        self.http_port = http_port
        self.prefix = f"cb{os.getpid()}{secrets.token_hex(2)}"
        roles = ["wan", "router", "bot", "caller"] + (["crouter"] if caller_nat else []) + (["turn"] if turn else [])
        self.ns = {role: f"{self.prefix}-{role}" for role in roles}
        self.bot_ip = f"{BOT_LAN}.2"
        self.bot_public_ip = BOT_PUBLIC
        self.caller_ip = f"{CALLER_LAN}.2" if caller_nat else CALLER_PUBLIC
        self.caller_public_ip = CROUTER_PUBLIC if caller_nat else CALLER_PUBLIC
        self.turn_ip = TURN_PUBLIC if turn else None
        self.server_url = f"http://{BOT_PUBLIC}:{http_port}"
        self._created: list[str] = []
        self._processes: list[asyncio.subprocess.Process] = []

    # -- running things inside -------------------------------------------------------

    def argv(self, role: str, *command: str) -> list[str]:
        """``command`` run inside ``role``'s namespace."""
        return ["ip", "netns", "exec", self.ns[role], *command]

    def run(self, role: str, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(self.argv(role, *command), check=check)

    def iptables(self, role: str, *rule: str) -> None:
        """Add a rule in ``role``'s namespace (deleted with the namespace)."""
        self.run(role, "iptables", *rule)

    def block_udp_from_bot(self) -> None:
        """The bot's router drops every UDP packet the bot sends out: only TCP leaves."""
        self.iptables("router", "-I", "FORWARD", "1", "-i", "lan0", "-p", "udp", "-j", "DROP")

    async def spawn(self, role: str, *command: str, **kwargs: Any) -> asyncio.subprocess.Process:
        """Start ``command`` in ``role``'s namespace; killed (by PID) on exit."""
        process = await asyncio.create_subprocess_exec(*self.argv(role, *command), **kwargs)
        self._processes.append(process)
        return process

    # -- building and tearing down ----------------------------------------------------

    def __enter__(self) -> "Topology":
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> "Topology":
        return self.__enter__()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop_processes()
        self.close()

    async def stop_processes(self, timeout: float = 10.0) -> None:
        """SIGTERM what we started (a server finalizes its calls), then SIGKILL."""
        for process in self._processes:
            if process.returncode is None:
                try:
                    process.terminate()
                except ProcessLookupError:
                    pass
        for process in self._processes:
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()

    def _ip(self, role: str, *args: str) -> None:
        _run(["ip", "-n", self.ns[role], *args])

    def _veth(self, a: str, a_name: str, b: str, b_name: str) -> None:
        # Made directly inside the two namespaces: the names never exist in
        # the namespace the tests run in, so parallel tests cannot clash.
        _run(["ip", "link", "add", "name", a_name, "netns", self.ns[a], "type", "veth",
              "peer", "name", b_name, "netns", self.ns[b]])
        self._ip(a, "link", "set", a_name, "up")
        self._ip(b, "link", "set", b_name, "up")

    def _attach_wan(self, role: str, address: str) -> None:
        port = f"p-{role}"[:15]
        self._veth(role, "wan0", "wan", port)
        self._ip("wan", "link", "set", port, "master", "br0")
        self._ip(role, "addr", "add", f"{address}/24", "dev", "wan0")
        self._ip(role, "route", "add", "default", "via", WAN_GATEWAY)

    def _nat_router(self, role: str, lan: str, public: str, forward: list[tuple[str, str]]) -> None:
        self.run(role, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        ipt = lambda *rule: self.iptables(role, *rule)  # noqa: E731
        ipt("-t", "nat", "-A", "POSTROUTING", "-o", "wan0", "-s", f"{lan}.0/24", "-j", "SNAT", "--to-source", public)
        for proto, ports in forward:
            ipt("-t", "nat", "-A", "PREROUTING", "-i", "wan0", "-d", public, "-p", proto, "--dport", ports,
                "-j", "DNAT", "--to-destination", f"{lan}.2")
        ipt("-P", "FORWARD", "DROP")
        ipt("-A", "FORWARD", "-i", "lan0", "-o", "wan0", "-j", "ACCEPT")
        ipt("-A", "FORWARD", "-i", "wan0", "-o", "lan0", "-m", "conntrack",
            "--ctstate", "ESTABLISHED,RELATED,DNAT", "-j", "ACCEPT")
        # Unsolicited packets to the router itself vanish (no ICMP either).
        ipt("-A", "INPUT", "-i", "wan0", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
        ipt("-A", "INPUT", "-i", "wan0", "-j", "DROP")

    def _build(self) -> None:
        problem = missing_requirements()
        if problem:
            raise RuntimeError(problem)
        for role, name in self.ns.items():
            _run(["ip", "netns", "add", name])
            self._created.append(name)
            self._ip(role, "link", "set", "lo", "up")
            # IPv4 only: no IPv6 candidates, no duplicate-address detection.
            self.run(role, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
            self.run(role, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
        self._ip("wan", "link", "add", "name", "br0", "type", "bridge")
        self._ip("wan", "link", "set", "br0", "up")
        self._ip("wan", "addr", "add", f"{WAN_GATEWAY}/24", "dev", "br0")

        self._attach_wan("router", BOT_PUBLIC)
        self._veth("router", "lan0", "bot", "eth0")
        self._ip("router", "addr", "add", f"{BOT_LAN}.1/24", "dev", "lan0")
        self._ip("bot", "addr", "add", f"{BOT_LAN}.2/24", "dev", "eth0")
        self._ip("bot", "route", "add", "default", "via", f"{BOT_LAN}.1")
        forward = [("tcp", str(self.http_port))]
        if self.bot_nat == "forward":
            forward.append(("udp", f"{self.rtc_ports[0]}:{self.rtc_ports[1]}"))
        self._nat_router("router", BOT_LAN, BOT_PUBLIC, forward)

        if self.caller_nat:
            self._attach_wan("crouter", CROUTER_PUBLIC)
            self._veth("crouter", "lan0", "caller", "eth0")
            self._ip("crouter", "addr", "add", f"{CALLER_LAN}.1/24", "dev", "lan0")
            self._ip("caller", "addr", "add", f"{CALLER_LAN}.2/24", "dev", "eth0")
            self._ip("caller", "route", "add", "default", "via", f"{CALLER_LAN}.1")
            self._nat_router("crouter", CALLER_LAN, CROUTER_PUBLIC, [])
        else:
            self._attach_wan("caller", CALLER_PUBLIC)
        if self.turn:
            self._attach_wan("turn", TURN_PUBLIC)

    def close(self) -> None:
        """Kill what runs inside, then delete the namespaces (idempotent)."""
        for process in self._processes:
            if process.returncode is None:
                try:
                    process.kill()
                except ProcessLookupError:
                    pass
        self._processes.clear()
        # Anything else left inside our namespaces (children of what we
        # started): `ip netns pids` lists exactly the processes in one.
        for name in self._created:
            for pid in _run(["ip", "netns", "pids", name], check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        for name in reversed(self._created):
            _run(["ip", "netns", "del", name], check=False)
        self._created.clear()

    def exists(self) -> list[str]:
        """Our namespaces that still exist (empty after close)."""
        listed = _run(["ip", "netns", "list"], check=False).stdout
        return [name for name in self.ns.values() if name in listed]
