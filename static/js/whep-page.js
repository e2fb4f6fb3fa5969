/** static/whep.html: watch a live call with the WHEP client. */

import { fetchRtcConfig } from './api.js';
import { watch } from './whep.js';

const params = new URLSearchParams(window.location.search);
const token = params.get('token');
const callId = params.get('call') || '';
const video = /** @type {HTMLVideoElement} */ (document.getElementById('live'));
const watchButton = /** @type {HTMLButtonElement} */ (document.getElementById('watch'));
const stopButton = /** @type {HTMLButtonElement} */ (document.getElementById('stop'));
const state = /** @type {HTMLElement} */ (document.getElementById('state'));

/** @type {{pc: RTCPeerConnection, resource: string, stop: () => Promise<void>} | null} */
let session = null;

function show(text) {
  state.textContent = text;
}

watchButton.addEventListener('click', async () => {
  watchButton.disabled = true;
  try {
    const { iceServers } = await fetchRtcConfig();
    show('Connecting…');
    session = await watch(`/whep/${encodeURIComponent(callId)}`, video, { token, iceServers });
    session.pc.addEventListener('connectionstatechange', () => {
      const s = session?.pc.connectionState;
      if (s === 'connected') show('Watching live.');
      else if (s === 'failed' || s === 'closed') show('The call has ended or the connection was lost.');
    });
    stopButton.disabled = false;
  } catch (err) {
    show(err && err.name === 'SessionError'
      ? (err.status === 404 ? 'This call is not live (or not yours).' : `The server refused: ${err.code} (${err.status}).`)
      : `Could not watch: ${err}`);
    watchButton.disabled = false;
  }
});

stopButton.addEventListener('click', async () => {
  stopButton.disabled = true;
  if (session) await session.stop();
  session = null;
  video.srcObject = null;
  show('Stopped.');
  watchButton.disabled = false;
});
