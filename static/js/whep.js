/**
 * A WHEP client: watch a live call (this server's `POST /whep/<call id>`).
 * For the gallery's "Watch live": `watch(summary.whep, videoElement)`.
 */

import { negotiate } from './webrtc-http.js';

/**
 * @param {string} endpoint  the `whep` URL of a gallery summary
 * @param {HTMLVideoElement} video  shows the call's video and plays its audio
 * @param {{token?: string | null, iceServers?: RTCIceServer[]}} [options]
 * @returns {Promise<{pc: RTCPeerConnection, resource: string, stop: () => Promise<void>}>}
 */
export async function watch(endpoint, video, { token = null, iceServers = [] } = {}) {
  const pc = new RTCPeerConnection({ iceServers, bundlePolicy: 'max-bundle' });
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const stream = new MediaStream();
  pc.addEventListener('track', (event) => {
    stream.addTrack(event.track);
    video.srcObject = stream;
  });
  try {
    const session = await negotiate(pc, endpoint, { token });
    return { pc, ...session };
  } catch (err) {
    pc.close();
    throw err;
  }
}
