/**
 * A WHIP client (RFC 9725): publish a camera/microphone stream to a WHIP
 * endpoint (this server's `POST /whip`), which records it like a call.
 */

import { negotiate } from './webrtc-http.js';

/**
 * @param {string} endpoint  e.g. '/whip'
 * @param {MediaStream} stream
 * @param {{token?: string | null, iceServers?: RTCIceServer[]}} [options]
 * @returns {Promise<{pc: RTCPeerConnection, resource: string, stop: () => Promise<void>}>}
 */
export async function publish(endpoint, stream, { token = null, iceServers = [] } = {}) {
  // max-bundle: one transport, so candidates belong to the first m-line only
  // (what WHIP servers expect, RFC 9725 section 4.3.1).
  const pc = new RTCPeerConnection({ iceServers, bundlePolicy: 'max-bundle' });
  for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
  try {
    const session = await negotiate(pc, endpoint, { token });
    return { pc, ...session };
  } catch (err) {
    pc.close();
    throw err;
  }
}
