"""Typed application keys, declared in one place."""

from __future__ import annotations

import weakref

from aiohttp import web

from peer.conntest import ConnectionTests
from peer.runtime import BotRuntime
from peer.whep import LiveViewers
from signaling.hub import SignalingHub
from signaling.registry import Registry
from webapp.access import AddressLimiter
from webapp.auth import TokenVerifier
from webapp.config import Config
from webapp.shared_photos import SharedPhotos, UploadTokens

CONFIG = web.AppKey("config", Config)
REGISTRY = web.AppKey("registry", Registry)
HUB = web.AppKey("hub", SignalingHub)
BOT = web.AppKey("bot", BotRuntime)
WEBSOCKETS = web.AppKey("websockets", weakref.WeakSet)
ADDRESS_LIMITER = web.AppKey("address_limiter", AddressLimiter)
SHARED_PHOTOS = web.AppKey("shared_photos", SharedPhotos)
#: Token verification (present when token auth is on).
VERIFIER = web.AppKey("token_verifier", TokenVerifier)
#: HMAC key of signed media URLs.
MEDIA_KEY = web.AppKey("media_key", bytes)
#: Per-login upload tokens for POST /api/photos without token auth.
UPLOAD_TOKENS = web.AppKey("upload_tokens", UploadTokens)
CONNECTION_TESTS = web.AppKey("connection_tests", ConnectionTests)
VIEWERS = web.AppKey("viewers", LiveViewers)
