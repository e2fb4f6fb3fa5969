"""Typed application keys, declared in one place."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from aiohttp import web

from ..config import Config
from ..signaling.hub import SignalingHub
from ..signaling.registry import Registry
from .access import AddressLimiter

if TYPE_CHECKING:
    from ..peer.bot import Bot
    from .photos_api import SharedPhotos

CONFIG = web.AppKey("config", Config)
REGISTRY = web.AppKey("registry", Registry)
HUB = web.AppKey("hub", SignalingHub)
BOT = web.AppKey("bot", "Bot")
WEBSOCKETS = web.AppKey("websockets", weakref.WeakSet)
ADDRESS_LIMITER = web.AppKey("address_limiter", AddressLimiter)
SHARED_PHOTOS = web.AppKey("shared_photos", "SharedPhotos")
