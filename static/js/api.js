/**
 * The HTTP API the page uses, each request in one function so a change in the
 * server's format is a change in one place.
 */

import { AppError } from './errors.js';
import { withToken } from './token.js';

/**
 * @typedef {object} FileEntry
 * @property {string} url
 * @property {string} name  the client's name for a photo, the file name otherwise
 * @property {string} [file]  the file name in the call directory
 * @property {number | null} [size]
 *
 * @typedef {object} CallSummary  one entry of GET /api/calls (webapp/gallery.py)
 * @property {string} call_id
 * @property {string} caller
 * @property {string} [bot]  the bot's username
 * @property {string} status  in-progress, complete, interrupted, ...
 * @property {string | null} started_at  ISO 8601 UTC
 * @property {string | null} [ended_at]
 * @property {number | null} duration  seconds
 * @property {string | null} [end_reason]
 * @property {string | null} thumbnail  URL
 * @property {{url: string, mime: string, size: number, file?: string} | null} recording
 * @property {FileEntry[]} photos
 * @property {FileEntry[]} frames
 * @property {string | false | null} [whep]  WHEP URL to watch the call live, while it is in progress
 * @property {CallQuality | null} [quality]  the path the call took and how it went
 *
 * @typedef {object} CallQuality
 * @property {string | null} [local]  candidate type on the bot's side: host, srflx, prflx, relay
 * @property {string | null} [remote]
 * @property {string | null} [protocol]
 * @property {number | null} [rtt_ms]
 * @property {number | null} [packets_lost]
 * @property {number | null} [bitrate_in_kbps]
 *
 * @typedef {object} ConnectionTestAnswer  POST /api/connection-test
 * @property {string} id
 * @property {string} sdp  the server's answer
 *
 * @typedef {object} ConnectionTestState  GET /api/connection-test/{id}
 * @property {string} state  the server side's connection state
 * @property {{local?: string, remote?: string, protocol?: string, rtt?: number} | null} [selected]
 */

/**
 * fetch() with the page's token, network errors as AppError('server-unreachable').
 * @param {string} url
 * @param {RequestInit} [init]
 * @returns {Promise<Response>}
 */
async function request(url, init = {}) {
  try {
    return await fetch(withToken(url), init);
  } catch (err) {
    throw new AppError('server-unreachable', String(err));
  }
}

/**
 * The JSON body, or an AppError named after the status.
 * @param {Response} response
 * @param {string} missing  the code when the server has no such endpoint
 */
async function json(response, missing) {
  if (response.status === 404 || response.status === 405) throw new AppError(missing, `HTTP ${response.status}`);
  if (response.status === 503 && missing === 'test-unavailable') throw new AppError('test-busy', `HTTP ${response.status}`);
  if (!response.ok) throw new AppError('server-error', `HTTP ${response.status}`);
  return response.json();
}

/**
 * The ICE servers the page should use (STUN/TURN from the server's flags).
 * No route, or no answer: none, which is right on localhost and a LAN.
 * @returns {Promise<RTCConfiguration>}
 */
export async function fetchRtcConfig() {
  try {
    const response = await request('/api/rtc-config', { headers: { accept: 'application/json' } });
    if (!response.ok) return { iceServers: [] };
    const body = await response.json();
    return { iceServers: Array.isArray(body.iceServers) ? body.iceServers : [] };
  } catch {
    return { iceServers: [] };
  }
}

/**
 * @typedef {object} CallQuery  GET /api/calls parameters, all optional
 * @property {number} [limit]  calls on the page
 * @property {number} [offset]  calls skipped (newest first)
 * @property {string} [caller]
 * @property {string} [from]  ISO 8601 instant, inclusive
 * @property {string} [to]
 *
 * @typedef {object} CallPage
 * @property {CallSummary[]} calls  this page, newest first
 * @property {number} total  calls matching the query
 * @property {string[]} callers  everyone whose calls you may read
 */

/**
 * Past calls with the bot, newest first: one page of those matching.
 * @param {CallQuery} [query]
 * @returns {Promise<CallPage>}
 */
export async function fetchCalls(query = {}) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== '') params.set(key, String(value));
  }
  const search = params.toString();
  const response = await request(`/api/calls${search ? `?${search}` : ''}`, { headers: { accept: 'application/json' } });
  // 403: without token auth the server shows calls to its own computer only.
  if (response.status === 401 || response.status === 403) throw new AppError('gallery-private', `HTTP ${response.status}`);
  if (!response.ok) throw new AppError('gallery-unavailable', `HTTP ${response.status}`);
  const body = await response.json();
  const calls = Array.isArray(body.calls) ? body.calls : [];
  return {
    calls,
    total: typeof body.total === 'number' ? body.total : calls.length,
    callers: Array.isArray(body.callers) ? body.callers.filter((c) => typeof c === 'string') : [],
  };
}

/**
 * One call's summary; AppError('no-such-call') if it is gone.
 * @param {string} callId
 * @returns {Promise<CallSummary>}
 */
export async function fetchCall(callId) {
  const response = await request(`/api/calls/${encodeURIComponent(callId)}`, { headers: { accept: 'application/json' } });
  return json(response, 'no-such-call');
}

/**
 * Deletes a call with its recording and photos (DELETE /api/calls/{id}).
 * A call that is already gone counts as deleted.
 * @param {string} callId
 * @returns {Promise<void>}
 */
export async function deleteCall(callId) {
  const response = await request(`/api/calls/${encodeURIComponent(callId)}`, { method: 'DELETE' });
  if (response.ok || response.status === 404) return;
  if (response.status === 405) throw new AppError('delete-unavailable');
  if (response.status === 409) throw new AppError('call-in-progress');
  if (response.status === 401 || response.status === 403) throw new AppError('not-allowed');
  throw new AppError('server-error', `HTTP ${response.status}`);
}

/**
 * Starts a connection test: the server answers `offer` with its own peer
 * connection, which echoes every data-channel message.
 * @param {string} offer  SDP with every candidate in it
 * @returns {Promise<ConnectionTestAnswer>}
 */
export async function startConnectionTest(offer) {
  const response = await request('/api/connection-test', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ sdp: offer }),
  });
  return json(response, 'test-unavailable');
}

/**
 * @param {string} id
 * @returns {Promise<ConnectionTestState>}
 */
export async function fetchConnectionTest(id) {
  const response = await request(`/api/connection-test/${encodeURIComponent(id)}`, { headers: { accept: 'application/json' } });
  return json(response, 'test-unavailable');
}

/** @param {string} id */
export async function endConnectionTest(id) {
  try {
    await request(`/api/connection-test/${encodeURIComponent(id)}`, { method: 'DELETE' });
  } catch {
    // The server drops idle tests by itself.
  }
}

/**
 * Keeps a server copy of a photo sent in a call between two people.
 *
 * The format of webapp/photo_upload.py: the raw image as the body, its
 * type as Content-Type, `name`, `id` and `sha256` in the query; `user` (the
 * sender) and `peer` name the call's two people so the server files the copy
 * with them (webapp/photos_api.py). The reply is the data channel's JSON: photo-saved (200) or
 * photo-error (4xx/5xx). Without token auth the server wants the login
 * reply's `uploadToken` in `X-Upload-Token`, so nobody can file a photo in
 * another user's name.
 *
 * @param {{id: string, name: string, mime: string, sha256: string, blob: Blob, from: string, to: string, uploadToken?: string | null}} photo
 * @returns {Promise<{size?: number, sha256?: string}>}
 */
export async function uploadPhotoCopy(photo) {
  const query = new URLSearchParams({
    name: photo.name, id: photo.id, sha256: photo.sha256, user: photo.from, peer: photo.to,
  });
  /** @type {Record<string, string>} */
  const headers = { 'Content-Type': photo.mime };
  if (photo.uploadToken) headers['X-Upload-Token'] = photo.uploadToken;
  const response = await request(`/api/photos?${query}`, { method: 'POST', headers, body: photo.blob });
  if (response.status === 404 || response.status === 405) throw new AppError('upload-unavailable');
  /** @type {{type?: string, error?: string, message?: string, sha256?: string, size?: number}} */
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
