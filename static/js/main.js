/**
 * The page's controller: wires signaling, calls, photos and the gallery to
 * the elements of index.html. All state lives in the closure of `createApp`.
 */

import { fetchRtcConfig, uploadPhotoCopy } from './api.js';
import { createCall, openCameraAndMicrophone } from './call.js';
import { byId, clear, formatBytes, formatDuration, h } from './dom.js';
import { AppError, describeError, errorCode } from './errors.js';
import { createGallery } from './gallery.js';
import { createPhotoLink, snapshot } from './photos.js';
import { createSignaling, signalingUrl } from './signaling.js';

/**
 * @typedef {import('./call.js').Call} Call
 * @typedef {import('./photos.js').PhotoLink} PhotoLink
 */

/**
 * Starts the page.
 * @param {Document} doc
 * @param {{wsUrl?: string}} [options]
 */
export function createApp(doc, { wsUrl = signalingUrl() } = {}) {
  const $ = (/** @type {string} */ id) => byId(doc, id);
  const ui = {
    views: { login: $('login-view'), calls: $('calls-view'), gallery: $('gallery-view') },
    tabCalls: $('tab-calls'),
    tabGallery: $('tab-gallery'),
    me: $('me'),
    meName: $('me-name'),
    signOut: $('sign-out'),
    loginForm: /** @type {HTMLFormElement} */ ($('login-form')),
    username: /** @type {HTMLInputElement} */ ($('username')),
    loginButton: /** @type {HTMLButtonElement} */ ($('login-button')),
    loginError: $('login-error'),
    people: $('people'),
    peopleEmpty: $('people-empty'),
    callTitle: $('call-title'),
    callState: $('call-state'),
    callMessage: $('call-message'),
    remoteVideo: /** @type {HTMLVideoElement} */ ($('remote-video')),
    localVideo: /** @type {HTMLVideoElement} */ ($('local-video')),
    placeholder: $('stage-placeholder'),
    snapshotButton: /** @type {HTMLButtonElement} */ ($('snapshot-button')),
    hangupButton: /** @type {HTMLButtonElement} */ ($('hangup-button')),
    photoStatus: $('photo-status'),
    photoProgress: /** @type {HTMLProgressElement} */ ($('photo-progress')),
    photoMessage: $('photo-message'),
    photos: $('call-photos'),
    photosSection: $('call-photos-section'),
    incoming: /** @type {HTMLDialogElement} */ ($('incoming')),
    incomingText: $('incoming-text'),
    acceptButton: $('accept-button'),
    declineButton: $('decline-button'),
    banner: $('banner'),
    bannerText: $('banner-text'),
    bannerClose: $('banner-close'),
  };

  const signaling = createSignaling(wsUrl);
  const gallery = createGallery({
    list: $('gallery-list'),
    status: $('gallery-status'),
    viewer: /** @type {HTMLDialogElement} */ ($('viewer')),
    viewerBody: $('viewer-body'),
    viewerTitle: $('viewer-title'),
  });

  /** @type {string | null} */
  let me = null;
  let botName = 'bot';
  /** @type {string[]} */
  let users = [];
  /** @type {RTCConfiguration} */
  let rtcConfig = { iceServers: [] };
  /** @type {Call | null} */
  let call = null;
  /** @type {MediaStream | null} */
  let localStream = null;
  /** @type {PhotoLink | null} */
  let photoLink = null;
  /** @type {RTCDataChannel | null} */
  let photoChannel = null;
  /** @type {{from: string, offer: RTCSessionDescriptionInit, candidates: (RTCIceCandidateInit | null)[]} | null} */
  let incoming = null;
  /** @type {ReturnType<typeof setInterval> | undefined} */
  let clock;
  let connectedAt = 0;
  let busyWithSnapshot = false;

  // -- Views ------------------------------------------------------------------

  /** @param {'calls' | 'gallery'} tab */
  function showTab(tab) {
    const showCalls = tab === 'calls';
    ui.views.login.hidden = !showCalls || me !== null;
    ui.views.calls.hidden = !showCalls || me === null;
    ui.views.gallery.hidden = showCalls;
    ui.tabCalls.setAttribute('aria-selected', String(showCalls));
    ui.tabGallery.setAttribute('aria-selected', String(!showCalls));
    if (!showCalls) gallery.refresh();
  }

  /** @param {string} text */
  function showBanner(text) {
    ui.bannerText.textContent = text;
    ui.banner.hidden = false;
  }

  function hideBanner() {
    ui.banner.hidden = true;
  }

  // -- Login ------------------------------------------------------------------

  ui.loginForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const username = ui.username.value.trim();
    ui.loginError.textContent = '';
    if (!username) {
      ui.loginError.textContent = describeError('invalid-username');
      return;
    }
    ui.loginButton.disabled = true;
    ui.loginButton.textContent = 'Signing in…';
    try {
      const reply = await signaling.login(username);
      if (!reply.success) throw new AppError(String(reply.error), reply.message);
      rtcConfig = await fetchRtcConfig();
      onLoggedIn(reply.username, Array.isArray(reply.users) ? reply.users : []);
    } catch (err) {
      ui.loginError.textContent = describeError(errorCode(err), { detail: String(err) });
    } finally {
      ui.loginButton.disabled = false;
      ui.loginButton.textContent = 'Sign in';
    }
  });

  /**
   * @param {string} username
   * @param {string[]} list
   */
  function onLoggedIn(username, list) {
    me = username;
    // The server lists the bot first (callbot/signaling/rules.py).
    botName = list[0] || botName;
    users = list.filter((u) => u !== me);
    ui.meName.textContent = me;
    ui.me.hidden = false;
    hideBanner();
    renderPeople();
    resetStage();
    showTab('calls');
  }

  ui.signOut.addEventListener('click', () => {
    endCall('hung-up-here');
    signaling.close();
  });

  signaling.onDisconnect(() => {
    const wasIn = me !== null;
    endCall('connection-lost', { notify: false });
    dismissIncoming();
    me = null;
    users = [];
    ui.me.hidden = true;
    if (wasIn) {
      ui.loginError.textContent = describeError('connection-lost');
      showBanner(describeError('connection-lost'));
    }
    showTab('calls');
  });

  // -- People -----------------------------------------------------------------

  function renderPeople() {
    clear(ui.people);
    const others = users.filter((u) => u !== botName).sort((a, b) => a.localeCompare(b));
    const ordered = users.includes(botName) ? [botName, ...others] : others;
    for (const name of ordered) {
      const isBot = name === botName;
      ui.people.appendChild(
        h(
          'li',
          { class: `person${isBot ? ' person-bot' : ''}`, dataset: { username: name } },
          h('span', { class: 'avatar', attrs: { 'aria-hidden': 'true' }, text: name[0].toUpperCase() }),
          h(
            'span',
            { class: 'person-text' },
            h('span', { class: 'person-name', text: name }),
            h('span', { class: 'person-note', text: isBot ? 'Bot · records the call' : 'Online' }),
          ),
          h('button', {
            type: 'button',
            class: 'button button-call',
            text: 'Call',
            disabled: call !== null && !isCallOver(),
            attrs: { 'aria-label': `Call ${name}` },
            on: { click: () => startCall(name) },
          }),
        ),
      );
    }
    ui.peopleEmpty.hidden = ordered.length > 0;
  }

  /** @param {{users?: string[], joined?: string[], left?: string[]}} message */
  function onPresence(message) {
    if (Array.isArray(message.users)) {
      users = message.users.filter((u) => u !== me);
    } else {
      const left = new Set(message.left || []);
      users = users.filter((u) => !left.has(u));
      for (const u of message.joined || []) if (u !== me && !users.includes(u)) users.push(u);
    }
    if (incoming && !users.includes(incoming.from)) dismissIncoming();
    renderPeople();
  }

  // -- Calls ------------------------------------------------------------------

  function isCallOver() {
    return !call || call.state() === 'ended' || call.state() === 'failed';
  }

  /** @param {string} peer */
  async function startCall(peer) {
    if (!isCallOver() || !me) return;
    dismissIncoming({ decline: true });
    resetStage();
    setStage(peer, 'connecting', 'Starting camera…');
    let stream;
    try {
      stream = await openCameraAndMicrophone();
    } catch (err) {
      setStage(peer, 'failed', 'Call failed', describeError(errorCode(err), { peer }));
      return;
    }
    beginCall(peer, 'caller', stream);
    try {
      await call.start();
    } catch (err) {
      call.fail(errorCode(err));
    }
  }

  /**
   * @param {string} peer
   * @param {'caller' | 'callee'} role
   * @param {MediaStream} stream
   */
  function beginCall(peer, role, stream) {
    localStream = stream;
    ui.localVideo.srcObject = stream;
    ui.localVideo.hidden = false;
    playQuietly(ui.localVideo);
    ui.placeholder.hidden = true;
    ui.hangupButton.hidden = false;
    ui.snapshotButton.hidden = false;
    updateSnapshotButton();
    const thisCall = createCall({
      peer,
      role,
      localStream: stream,
      rtcConfig,
      send: (message) => signaling.send(message),
      events: {
        onState: (state, info) => {
          if (call !== thisCall) return;
          onCallState(state, info);
        },
        onRemoteStream: (remote) => {
          if (call !== thisCall) return;
          if (ui.remoteVideo.srcObject !== remote) {
            ui.remoteVideo.srcObject = remote;
            playQuietly(ui.remoteVideo);
          }
        },
        onChannel: (channel) => {
          if (call !== thisCall) return;
          attachPhotoChannel(channel, thisCall);
        },
      },
    });
    call = thisCall;
    renderPeople();
  }

  /**
   * @param {import('./call.js').CallState} state
   * @param {{reason?: string, label: string}} info
   */
  function onCallState(state, info) {
    if (!call) return;
    const peer = call.peer;
    clearInterval(clock);
    if (state === 'connected') {
      connectedAt = performance.now();
      const tick = () => {
        setStage(peer, 'connected', `Connected · ${formatDuration((performance.now() - connectedAt) / 1000)}`);
      };
      tick();
      clock = setInterval(tick, 1000);
    } else if (state === 'ended' || state === 'failed') {
      const quiet = info.reason === 'hung-up-here';
      setStage(peer, state, info.label, quiet ? '' : describeError(info.reason || '', { peer }));
      releaseMedia();
      renderPeople();
    } else {
      setStage(peer, state, info.label);
    }
    updateSnapshotButton();
  }

  /**
   * @param {string} peer
   * @param {string} state
   * @param {string} label
   * @param {string} [message]
   */
  function setStage(peer, state, label, message) {
    ui.callTitle.textContent = peer === botName ? `Call with ${peer} (recorded)` : `Call with ${peer}`;
    ui.callState.textContent = label;
    ui.callState.dataset.state = state;
    ui.callState.hidden = false;
    if (message !== undefined) {
      ui.callMessage.textContent = message;
      ui.callMessage.hidden = !message;
    }
  }

  function resetStage() {
    ui.callTitle.textContent = 'No call yet';
    ui.callState.hidden = true;
    ui.callState.dataset.state = 'idle';
    ui.callMessage.hidden = true;
    ui.callMessage.textContent = '';
    ui.placeholder.hidden = false;
    ui.hangupButton.hidden = true;
    ui.snapshotButton.hidden = true;
    ui.photoStatus.hidden = true;
    clear(ui.photos);
    ui.photosSection.hidden = true;
  }

  function releaseMedia() {
    clearInterval(clock);
    photoLink?.close();
    photoLink = null;
    photoChannel = null;
    for (const track of localStream?.getTracks() || []) track.stop();
    localStream = null;
    ui.localVideo.srcObject = null;
    ui.localVideo.hidden = true;
    ui.remoteVideo.srcObject = null;
    ui.placeholder.hidden = false;
    ui.hangupButton.hidden = true;
    ui.snapshotButton.hidden = true;
  }

  /**
   * @param {string} reason
   * @param {{notify?: boolean}} [options]
   */
  function endCall(reason, options) {
    if (call && !isCallOver()) call.hangup(reason, options);
  }

  ui.hangupButton.addEventListener('click', () => endCall('hung-up-here'));

  /** @param {HTMLVideoElement} video */
  function playQuietly(video) {
    video.play().catch(() => {
      // Autoplay refused; the controls-free video starts on the next gesture.
    });
  }

  // -- Incoming calls ---------------------------------------------------------

  /** @param {string} from @param {RTCSessionDescriptionInit} offer */
  function onOffer(from, offer) {
    if (!isCallOver() || incoming) {
      // Busy: say no without bothering the person.
      trySend({ type: 'close', otherUsername: from });
      return;
    }
    incoming = { from, offer, candidates: [] };
    ui.incomingText.textContent = `${from} is calling you`;
    if (!ui.incoming.open) ui.incoming.showModal();
  }

  /** @param {{decline?: boolean}} [options] */
  function dismissIncoming({ decline = false } = {}) {
    if (!incoming) return;
    if (decline) trySend({ type: 'close', otherUsername: incoming.from });
    incoming = null;
    if (ui.incoming.open) ui.incoming.close();
  }

  ui.declineButton.addEventListener('click', () => dismissIncoming({ decline: true }));
  ui.incoming.addEventListener('cancel', (event) => {
    event.preventDefault();
    dismissIncoming({ decline: true });
  });

  ui.acceptButton.addEventListener('click', async () => {
    if (!incoming) return;
    const { from, offer, candidates } = incoming;
    incoming = null;
    ui.incoming.close();
    resetStage();
    setStage(from, 'connecting', 'Starting camera…');
    let stream;
    try {
      stream = await openCameraAndMicrophone();
    } catch (err) {
      trySend({ type: 'close', otherUsername: from });
      setStage(from, 'failed', 'Call failed', describeError(errorCode(err), { peer: from }));
      return;
    }
    beginCall(from, 'callee', stream);
    const thisCall = call;
    try {
      for (const candidate of candidates) await thisCall.addRemoteCandidate(candidate);
      await thisCall.accept(offer);
    } catch (err) {
      trySend({ type: 'close', otherUsername: from });
      thisCall.fail(errorCode(err));
    }
  });

  // -- Signaling messages -----------------------------------------------------

  function trySend(message) {
    try {
      signaling.send(message);
    } catch {
      // Disconnected; onDisconnect tells the person.
    }
  }

  signaling.onMessage((message) => {
    const from = typeof message.username === 'string' ? message.username : '';
    switch (message.type) {
      case 'presence':
        onPresence(message);
        break;
      case 'offer':
        if (from && message.offer) onOffer(from, message.offer);
        break;
      case 'answer':
        if (call && call.peer === from && message.answer) {
          call.handleAnswer(message.answer).catch((err) => call?.fail(errorCode(err)));
        }
        break;
      case 'candidate':
        if (call && call.peer === from && !isCallOver()) {
          call.addRemoteCandidate(message.candidate ?? null);
        } else if (incoming && incoming.from === from) {
          incoming.candidates.push(message.candidate ?? null);
        }
        break;
      case 'close':
        if (incoming && incoming.from === from) {
          dismissIncoming();
        } else if (call && call.peer === from && !isCallOver()) {
          const answered = call.role === 'callee' || call.pc.remoteDescription !== null;
          call.hangup(answered ? 'hung-up' : 'declined', { notify: false });
        }
        break;
      case 'error':
        onServerError(message, from);
        break;
      default:
        break;
    }
  });

  /**
   * @param {{code?: string, message?: string}} message
   * @param {string} from  set when the bot sent it
   */
  function onServerError(message, from) {
    const code = String(message.code || 'unknown');
    const inCall = call && !isCallOver();
    if (inCall && (code === 'user-offline' || (from && from === call.peer))) {
      call.fail(code);
      return;
    }
    // Late replies to a call that is already over (e.g. one user-offline per
    // trickled candidate) say nothing new.
    if (code === 'user-offline' || (call && from === call.peer)) return;
    showBanner(describeError(code, { detail: message.message }));
  }

  // -- Photos -----------------------------------------------------------------

  /**
   * @param {RTCDataChannel} channel
   * @param {Call} owner
   */
  function attachPhotoChannel(channel, owner) {
    photoChannel = channel;
    photoLink = createPhotoLink(channel, owner.pc, {
      onPhoto: (photo) => {
        if (call !== owner) return;
        addPhotoTile(photo.blob, `From ${owner.peer}`, 'received', photo.sha256);
      },
    });
    channel.addEventListener('open', updateSnapshotButton);
    channel.addEventListener('close', updateSnapshotButton);
    updateSnapshotButton();
  }

  function updateSnapshotButton() {
    const ready = Boolean(
      call && call.state() === 'connected' && photoChannel && photoChannel.readyState === 'open',
    );
    ui.snapshotButton.disabled = !ready || busyWithSnapshot;
  }

  ui.snapshotButton.addEventListener('click', async () => {
    if (!call || !photoLink || busyWithSnapshot) return;
    const owner = call;
    const link = photoLink;
    const toBot = owner.peer === botName;
    busyWithSnapshot = true;
    updateSnapshotButton();
    setPhotoStatus('sending', 0, 'Taking a snapshot…');
    try {
      const photo = await snapshot(ui.localVideo);
      const tile = addPhotoTile(photo.blob, 'Sending…', 'sent', photo.sha256);
      const sizeText = formatBytes(photo.bytes.byteLength);
      setPhotoStatus('sending', 0, `Sending snapshot (${sizeText})…`);
      const saved = await link.send(photo, (fraction) => {
        setPhotoStatus('sending', fraction, fraction < 1
          ? `Sending snapshot (${sizeText})… ${Math.round(fraction * 100)}%`
          : 'Waiting for confirmation…');
      });
      if (toBot) {
        setPhotoStatus('saved', 1, `Saved by ${owner.peer} ✓ (${formatBytes(saved.size ?? photo.bytes.byteLength)})`);
        setTileCaption(tile, 'Saved by the bot ✓', 'saved');
      } else {
        setPhotoStatus('delivered', 1, `Delivered to ${owner.peer} ✓ · saving a copy on the server…`);
        setTileCaption(tile, `Delivered to ${owner.peer} ✓`, 'delivered');
        try {
          await uploadPhotoCopy({ ...photo, blob: photo.blob, from: me || '', to: owner.peer });
          setPhotoStatus('saved', 1, `Delivered to ${owner.peer} ✓ · copy saved on the server ✓`);
          setTileCaption(tile, `Delivered to ${owner.peer} ✓ · server copy ✓`, 'saved');
        } catch (err) {
          setPhotoStatus('copy-failed', 1,
            `Delivered to ${owner.peer} ✓ · no server copy: ${describeError(errorCode(err))}`);
        }
      }
    } catch (err) {
      setPhotoStatus('error', 0, `The snapshot was not sent: ${describeError(errorCode(err), { peer: owner.peer })}`);
    } finally {
      busyWithSnapshot = false;
      updateSnapshotButton();
    }
  });

  /**
   * @param {string} state  sending | delivered | saved | copy-failed | error
   * @param {number} fraction
   * @param {string} text
   */
  function setPhotoStatus(state, fraction, text) {
    ui.photoStatus.hidden = false;
    ui.photoStatus.dataset.state = state;
    ui.photoProgress.value = fraction;
    ui.photoMessage.textContent = text;
  }

  /**
   * @param {Blob} blob
   * @param {string} caption
   * @param {'sent' | 'received'} direction
   * @param {string} sha256
   * @returns {HTMLElement}
   */
  function addPhotoTile(blob, caption, direction, sha256) {
    const url = URL.createObjectURL(blob);
    const tile = h(
      'li',
      { class: `photo-tile photo-${direction}`, dataset: { sha256, direction, state: 'pending' } },
      h('img', { src: url, alt: caption }),
      h('span', { class: 'photo-caption', text: caption }),
    );
    ui.photos.prepend(tile);
    ui.photosSection.hidden = false;
    return tile;
  }

  /** @param {HTMLElement} tile @param {string} caption @param {string} state */
  function setTileCaption(tile, caption, state) {
    const label = tile.querySelector('.photo-caption');
    if (label) label.textContent = caption;
    tile.dataset.state = state;
  }

  // -- Chrome -----------------------------------------------------------------

  ui.tabCalls.addEventListener('click', () => showTab('calls'));
  ui.tabGallery.addEventListener('click', () => showTab('gallery'));
  $('gallery-refresh').addEventListener('click', () => gallery.refresh());
  ui.bannerClose.addEventListener('click', hideBanner);
  $('viewer-close').addEventListener('click', () => /** @type {HTMLDialogElement} */ ($('viewer')).close());
  window.addEventListener('pagehide', () => endCall('hung-up-here'));

  resetStage();
  showTab('calls');
  ui.username.focus();
}

createApp(document);
