"""Typed application keys, declared in one place."""

from __future__ import annotations

import weakref

from aiohttp import web

from peer.runtime import BotRuntime
from peer.whep import LiveViewers
from signaling.hub import SignalingHub
from signaling.registry import Registry
from webapp.access import AddressLimiter
from webapp.config import Config
from webapp.shared_photos import SharedPhotos

CONFIG = web.AppKey("config", Config)
REGISTRY = web.AppKey("registry", Registry)
HUB = web.AppKey("hub", SignalingHub)
BOT = web.AppKey("bot", BotRuntime)
WEBSOCKETS = web.AppKey("websockets", weakref.WeakSet)
ADDRESS_LIMITER = web.AppKey("address_limiter", AddressLimiter)
SHARED_PHOTOS = web.AppKey("shared_photos", SharedPhotos)
VIEWERS = web.AppKey("viewers", LiveViewers)
