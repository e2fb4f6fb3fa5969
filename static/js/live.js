/**
 * Watching a call live over WHEP (the WebRTC-HTTP Egress Protocol): the
 * page POSTs an SDP offer (`application/sdp`) with its candidates gathered
 * to the call's WHEP URL (a gallery summary's `whep`), the server answers
 * 201 Created with its SDP answer and a `Location` for the session, and a
 * DELETE on that location ends it.
 */

import { AppError } from './errors.js';
import { gatheringDone } from './ice.js';
import { withToken } from './token.js';

/**
 * @typedef {object} LiveView
 * @property {() => Promise<void>} close
 */

/** Longest wait for our candidates before sending the offer anyway. */
const GATHER_MS = 3000;

/**
 * Starts playing the call at `url` in `video`.
 * @param {string} url  the summary's `whep` URL
 * @param {HTMLVideoElement} video
 * @param {RTCConfiguration} rtcConfig
 * @returns {Promise<LiveView>}
 */
export async function watchLive(url, video, rtcConfig) {
  const pc = new RTCPeerConnection(rtcConfig);
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const stream = new MediaStream();
  pc.addEventListener('track', (event) => {
    stream.addTrack(event.track);
    if (video.srcObject !== stream) video.srcObject = stream;
    video.play().catch(() => {});
  });
  /** @type {string | null} */
  let location = null;
  try {
    await pc.setLocalDescription(await pc.createOffer());
    await gatheringDone(pc, GATHER_MS);
    let response;
    try {
      response = await fetch(withToken(url), {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp' },
        body: pc.localDescription?.sdp,
      });
    } catch (err) {
      throw new AppError('server-unreachable', String(err));
    }
    if (response.status === 404 || response.status === 405) throw new AppError('live-unavailable');
    if (!response.ok) throw new AppError('live-failed', `HTTP ${response.status}`);
    const header = response.headers.get('Location');
    location = header ? new URL(header, new URL(url, window.location.href)).pathname : null;
    await pc.setRemoteDescription({ type: 'answer', sdp: await response.text() });
  } catch (err) {
    pc.close();
    throw err;
  }
  return {
    async close() {
      pc.close();
      video.srcObject = null;
      if (location) {
        try {
          await fetch(withToken(location), { method: 'DELETE' });
        } catch {
          // The server ends idle sessions by itself.
        }
      }
    },
  };
}
