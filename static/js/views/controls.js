/**
 * Call controls: microphone, camera, the choice of devices (also during a
 * call), fullscreen, snapshot, and hang up ("Cancel" while it rings).
 */

import { clear, h, setText, show } from '../dom.js';
import { isLive } from '../state.js';
import { watch } from '../store.js';

/**
 * @typedef {import('../state.js').AppState} AppState
 * @typedef {import('../store.js').Store<AppState>} AppStore
 *
 * @typedef {object} ControlActions
 * @property {() => void} hangup
 * @property {() => void} toggleMic
 * @property {() => void} toggleCamera
 * @property {(kind: 'audio' | 'video', id: string) => void} chooseDevice
 * @property {() => void} refreshDevices
 * @property {() => void} sendSnapshot
 */

/**
 * @param {object} options
 * @param {AppStore} options.store
 * @param {Record<string, HTMLElement>} options.el  by id: call-controls, mic-button, camera-button,
 *   devices-button, fullscreen-button, snapshot-button, hangup-button, device-panel, camera-select,
 *   mic-select, stage
 * @param {ControlActions} options.actions
 * @param {Document} [options.doc]
 */
export function createControlsView({ store, el, actions, doc = document }) {
  const cameraSelect = /** @type {HTMLSelectElement} */ (el['camera-select']);
  const micSelect = /** @type {HTMLSelectElement} */ (el['mic-select']);
  const snapshotButton = /** @type {HTMLButtonElement} */ (el['snapshot-button']);

  el['hangup-button'].addEventListener('click', () => actions.hangup());
  el['mic-button'].addEventListener('click', () => actions.toggleMic());
  el['camera-button'].addEventListener('click', () => actions.toggleCamera());
  el['snapshot-button'].addEventListener('click', () => actions.sendSnapshot());
  el['devices-button'].addEventListener('click', () => {
    const open = el['device-panel'].hidden;
    show(el['device-panel'], open);
    el['devices-button'].setAttribute('aria-expanded', String(open));
    if (open) actions.refreshDevices();
  });
  cameraSelect.addEventListener('change', () => actions.chooseDevice('video', cameraSelect.value));
  micSelect.addEventListener('change', () => actions.chooseDevice('audio', micSelect.value));

  // The whole stage goes fullscreen, so the controls stay at hand.
  const canFullscreen = Boolean(doc.fullscreenEnabled && el.stage.requestFullscreen);
  show(el['fullscreen-button'], canFullscreen);
  el['fullscreen-button'].addEventListener('click', () => {
    if (doc.fullscreenElement) void doc.exitFullscreen();
    else el.stage.requestFullscreen().catch(() => {});
  });
  doc.addEventListener('fullscreenchange', () => {
    const on = doc.fullscreenElement === el.stage;
    setText(el['fullscreen-button'], on ? 'Exit fullscreen' : 'Fullscreen');
  });

  watch(store, (s) => s.call, (call) => {
    const live = call !== null && (isLive(call) || call.phase === 'starting');
    show(el['call-controls'], live);
    if (!live) {
      show(el['device-panel'], false);
      el['devices-button'].setAttribute('aria-expanded', 'false');
      if (doc.fullscreenElement === el.stage) void doc.exitFullscreen();
    }
    if (!call) return;
    const beforeAnswer = call.phase === 'starting' || call.phase === 'ringing';
    setText(el['hangup-button'], beforeAnswer && call.role === 'caller' ? 'Cancel' : 'Hang up');
    const media = call.localStream !== null;
    el['mic-button'].toggleAttribute('disabled', !media);
    el['camera-button'].toggleAttribute('disabled', !media);
    // The label says what a press does (no aria-pressed on top of it, which
    // would read "Unmute, pressed"); the colour says something is off.
    setText(el['mic-button'], call.micOn ? 'Mute' : 'Unmute');
    el['mic-button'].dataset.on = String(call.micOn);
    setText(el['camera-button'], call.camOn ? 'Camera off' : 'Camera on');
    el['camera-button'].dataset.on = String(call.camOn);
    snapshotButton.disabled = !(call.phase === 'connected' && call.photosReady && call.camOn && !call.snapshotBusy);
  });

  watch(store, (s) => [s.devices, s.call?.localStream ?? null], ([devices, stream]) => {
    const list = /** @type {import('../state.js').Devices} */ (devices);
    const tracks = /** @type {MediaStream | null} */ (stream);
    // The device in use wins over the choice (a default was used, or the
    // chosen one was unplugged).
    const using = (/** @type {MediaStreamTrack | undefined} */ t) => t?.getSettings().deviceId || null;
    fill(cameraSelect, list.video, using(tracks?.getVideoTracks()[0]) || list.videoId, 'Default camera');
    fill(micSelect, list.audio, using(tracks?.getAudioTracks()[0]) || list.audioId, 'Default microphone');
  });

  /**
   * @param {HTMLSelectElement} select
   * @param {import('../devices.js').DeviceOption[]} options
   * @param {string | null} chosen
   * @param {string} fallback
   */
  function fill(select, options, chosen, fallback) {
    clear(select);
    if (options.length === 0) select.appendChild(h('option', { value: '', text: fallback }));
    for (const option of options) select.appendChild(h('option', { value: option.id, text: option.label }));
    select.value = chosen && options.some((o) => o.id === chosen) ? chosen : (options[0]?.id ?? '');
    select.disabled = options.length < 2;
  }
}
