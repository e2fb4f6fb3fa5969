/**
 * The HTTP API the page uses, each request in one function so a change in the
 * server's format is a change in one place.
 */

import { AppError } from './errors.js';
import { withToken } from './token.js';

/**
 * @typedef {object} CallSummary  one entry of GET /api/calls (callbot/web/gallery.py)
 * @property {string} call_id
 * @property {string} caller
 * @property {string} status
 * @property {string | null} started_at  ISO 8601 UTC
 * @property {number | null} duration  seconds
 * @property {string | null} thumbnail  URL
 * @property {{url: string, mime: string, size: number} | null} recording
 * @property {{url: string, name: string}[]} photos
 * @property {{url: string, name: string}[]} frames
 */

/**
 * The ICE servers the page should use (STUN/TURN from the server's flags).
 * No route, or no answer: none, which is right on localhost and a LAN.
 * @returns {Promise<RTCConfiguration>}
 */
export async function fetchRtcConfig() {
  try {
    const response = await fetch(withToken('/api/rtc-config'), { headers: { accept: 'application/json' } });
    if (!response.ok) return { iceServers: [] };
    const body = await response.json();
    return { iceServers: Array.isArray(body.iceServers) ? body.iceServers : [] };
  } catch {
    return { iceServers: [] };
  }
}

/**
 * Past calls with the bot, newest first.
 * @returns {Promise<CallSummary[]>}
 */
export async function fetchCalls() {
  let response;
  try {
    response = await fetch(withToken('/api/calls'), { headers: { accept: 'application/json' } });
  } catch (err) {
    throw new AppError('server-unreachable', String(err));
  }
  if (!response.ok) throw new AppError('gallery-unavailable', `HTTP ${response.status}`);
  const body = await response.json();
  return Array.isArray(body.calls) ? body.calls : [];
}

/**
 * Keeps a server copy of a photo sent in a call between two people.
 *
 * The format of callbot/media/photos_http.py: the raw image as the body, its
 * type as Content-Type, `name`, `id` and `sha256` in the query; `user` (the
 * sender) and `peer` name the call's two people so the server files the copy
 * with them (callbot/web/photos_api.py). The reply is the data channel's JSON: photo-saved (200) or
 * photo-error (4xx/5xx).
 *
 * @param {{id: string, name: string, mime: string, sha256: string, blob: Blob, from: string, to: string}} photo
 * @returns {Promise<{size?: number, sha256?: string}>}
 */
export async function uploadPhotoCopy(photo) {
  const query = new URLSearchParams({
    name: photo.name, id: photo.id, sha256: photo.sha256, user: photo.from, peer: photo.to,
  });
  let response;
  try {
    response = await fetch(withToken(`/api/photos?${query}`), {
      method: 'POST',
      headers: { 'Content-Type': photo.mime },
      body: photo.blob,
    });
  } catch (err) {
    throw new AppError('server-unreachable', String(err));
  }
  if (response.status === 404 || response.status === 405) throw new AppError('upload-unavailable');
  let body = {};
  try {
    body = await response.json();
  } catch {
    // Not JSON: the status says enough.
  }
  if (!response.ok || body.type === 'photo-error') {
    throw new AppError(String(body.error || 'storage-failed'), body.message);
  }
  if (body.sha256 && body.sha256 !== photo.sha256) throw new AppError('hash-mismatch');
  return body;
}
