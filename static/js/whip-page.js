/** static/whip.html: publish the camera with the WHIP client. */

import { fetchRtcConfig } from './api.js';
import { publish } from './whip.js';

const token = new URLSearchParams(window.location.search).get('token');
const preview = /** @type {HTMLVideoElement} */ (document.getElementById('preview'));
const publishButton = /** @type {HTMLButtonElement} */ (document.getElementById('publish'));
const stopButton = /** @type {HTMLButtonElement} */ (document.getElementById('stop'));
const state = /** @type {HTMLElement} */ (document.getElementById('state'));

/** @type {{pc: RTCPeerConnection, resource: string, stop: () => Promise<void>} | null} */
let session = null;
/** @type {MediaStream | null} */
let stream = null;

function show(text) {
  state.textContent = text;
}

publishButton.addEventListener('click', async () => {
  publishButton.disabled = true;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: true });
    preview.srcObject = stream;
    const { iceServers } = await fetchRtcConfig();
    show('Connecting…');
    session = await publish('/whip', stream, { token, iceServers });
    document.body.dataset.resource = session.resource;
    session.pc.addEventListener('connectionstatechange', () => {
      const s = session?.pc.connectionState;
      if (s === 'connected') show('Publishing.');
      else if (s === 'failed' || s === 'closed') show(`Connection ${s}.`);
    });
    if (session.pc.connectionState === 'connected') show('Publishing.');
    stopButton.disabled = false;
  } catch (err) {
    const name = err && err.name;
    show(name === 'NotAllowedError' ? 'Camera or microphone access was denied.'
      : name === 'SessionError' ? `The server refused: ${err.code} (${err.status}).`
      : `Could not publish: ${err}`);
    if (stream) stream.getTracks().forEach((t) => t.stop());
    publishButton.disabled = false;
  }
});

stopButton.addEventListener('click', async () => {
  stopButton.disabled = true;
  if (session) await session.stop();
  session = null;
  if (stream) stream.getTracks().forEach((t) => t.stop());
  show('Stopped; the recording is in the gallery.');
  document.body.dataset.stopped = 'true';
  publishButton.disabled = false;
});
