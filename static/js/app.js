/**
 * The page, put together: one store (js/store.js), the signaling session
 * (reconnects by itself), the call controller, and a view per part of the
 * page. Views render from the store and call the actions defined here;
 * nothing else talks to the server.
 */

import { fetchRtcConfig } from './api.js';
import { createCallController } from './calls.js';
import { byId } from './dom.js';
import { AppError, describeError, errorCode } from './errors.js';
import { createRinger } from './ring.js';
import { createSession } from './session.js';
import { createSignaling, signalingUrl } from './signaling.js';
import { initialState } from './state.js';
import { createStore } from './store.js';
import { createChatView } from './views/chat.js';
import { createChromeView } from './views/chrome.js';
import { createConnectionTestView } from './views/conntest.js';
import { createControlsView } from './views/controls.js';
import { createGalleryView } from './views/gallery.js';
import { createIncomingView } from './views/incoming.js';
import { createLoginView } from './views/login.js';
import { createPeopleView } from './views/people.js';
import { createPhotosView } from './views/photos.js';
import { createStageView } from './views/stage.js';

/**
 * @typedef {import('./state.js').AppState} AppState
 * @typedef {import('./signaling.js').Message} Message
 * @typedef {import('./session.js').StatusChange} StatusChange
 */

/** Usernames as the server accepts them (signaling/protocol.py). */
const USERNAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;

/**
 * Starts the page in `doc`.
 * @param {Document} doc
 * @param {{wsUrl?: string}} [options]
 * @returns {{store: import('./store.js').Store<AppState>}}
 */
export function createApp(doc, { wsUrl = signalingUrl() } = {}) {
  /** @param {string[]} ids */
  const elements = (...ids) => Object.fromEntries(ids.map((id) => [id, byId(doc, id)]));
  const win = doc.defaultView || window;
  const store = createStore(initialState());

  const signaling = createSignaling(wsUrl);
  const session = createSession({ signaling, onMessage, onStatus, win });
  const calls = createCallController({
    store,
    send: (message) => session.send(message),
    snapshotSource: () => /** @type {HTMLVideoElement} */ (byId(doc, 'local-video')),
  });

  // -- actions -------------------------------------------------------------------

  /** @param {string} username */
  async function login(username) {
    if (!USERNAME.test(username)) {
      store.update({ loginError: describeError('invalid-username') });
      return;
    }
    store.update({ loginError: null, signingIn: true });
    askForNotifications();
    try {
      const reply = await session.login(username);
      if (!reply.success) throw new AppError(String(reply.error), reply.message);
      const rtcConfig = await fetchRtcConfig();
      online(reply, rtcConfig);
    } catch (err) {
      store.update({ loginError: describeError(errorCode(err), { detail: String(err) }) });
    } finally {
      store.update({ signingIn: false });
    }
  }

  /**
   * @param {Message} reply  a successful login reply
   * @param {RTCConfiguration} [rtcConfig]
   */
  function online(reply, rtcConfig) {
    const me = String(reply.username);
    const list = Array.isArray(reply.users) ? reply.users.map(String) : [];
    store.update({
      me,
      uploadToken: typeof reply.uploadToken === 'string' ? reply.uploadToken : null,
      // The server lists the bot first (signaling/rules.py).
      botName: list[0] || store.get().botName,
      users: list.filter((u) => u !== me),
      connection: 'online',
      serverRestarting: false,
      banner: null,
      loginError: null,
      ...(rtcConfig ? { rtcConfig } : {}),
    });
  }

  function askForNotifications() {
    // Asked while the person is clicking "Sign in" (a user gesture), so an
    // incoming call can be announced while the page is in the background.
    const N = /** @type {any} */ (win).Notification;
    if (N && N.permission === 'default') void Promise.resolve(N.requestPermission()).catch(() => {});
  }

  function signOut() {
    calls.endEverything();
    session.signOut();
    store.update({ me: null, uploadToken: null, users: [], connection: 'signed-out', call: null, photos: [], photoStatus: null, newPhoto: null, chat: { channel: 'none', entries: [] } });
  }

  const actions = {
    login: (/** @type {string} */ u) => void login(u),
    signOut,
    showTab: (/** @type {'calls' | 'gallery'} */ tab) => store.update({ tab }),
    dismissBanner: () => store.update({ banner: null }),
    call: (/** @type {string} */ peer) => void calls.call(peer),
    accept: () => void calls.accept(),
    decline: () => calls.decline(),
    hangup: () => calls.hangup(),
    toggleMic: () => void calls.toggleMic(),
    toggleCamera: () => void calls.toggleCamera(),
    chooseDevice: (/** @type {'audio' | 'video'} */ kind, /** @type {string} */ id) => void calls.chooseDevice(kind, id),
    refreshDevices: () => void calls.refreshDevices(),
    sendSnapshot: () => void calls.sendSnapshot(),
    sendChat: (/** @type {string} */ text) => calls.sendChat(text),
    seenPhoto: () => store.update({ newPhoto: null }),
    openInGallery: (/** @type {string} */ callId) => store.update({ tab: 'gallery', galleryCall: callId }),
  };

  // -- the session -----------------------------------------------------------------

  /** @param {Message} message */
  function onMessage(message) {
    if (message.type === 'presence') onPresence(message);
    else calls.onSignal(message);
  }

  /** @param {Message} message */
  function onPresence(message) {
    const me = store.get().me;
    let users = store.get().users;
    if (Array.isArray(message.users)) {
      users = message.users.map(String).filter((u) => u !== me);
    } else {
      const left = new Set(message.left || []);
      users = users.filter((u) => !left.has(u));
      for (const u of message.joined || []) if (u !== me && !users.includes(u)) users = [...users, String(u)];
    }
    store.update({ users });
    const incoming = store.get().incoming;
    if (incoming && !users.includes(incoming.from)) calls.onSignal({ type: 'close', username: incoming.from });
  }

  /** @param {StatusChange} change */
  function onStatus(change) {
    if (change.status === 'reconnecting') {
      store.update({ connection: 'reconnecting', serverRestarting: Boolean(change.restarting) || store.get().serverRestarting });
      calls.onSession(change);
      return;
    }
    if (change.status === 'online') {
      const wasAway = store.get().connection === 'reconnecting';
      if (change.reply && wasAway) online(change.reply);
      else store.update({ connection: 'online' });
      calls.onSession(change);
      // Who is online may have changed while we were away.
      if (wasAway) {
        try {
          session.send({ type: 'presence' });
        } catch {
          // Dropped again; the next reconnect asks again.
        }
      }
      return;
    }
    // Signed out: by the person, or a reconnect that could not log in again.
    calls.onSession(change);
    const wasIn = store.get().me !== null;
    store.update({
      me: null,
      uploadToken: null,
      users: [],
      connection: 'signed-out',
      serverRestarting: false,
      loginError: change.error && wasIn ? describeError(change.error === 'username-taken' ? 'connection-lost' : change.error) : null,
    });
  }

  // -- views -----------------------------------------------------------------------

  createChromeView({
    store,
    actions,
    win,
    el: elements('login-view', 'calls-view', 'gallery-view', 'tab-calls', 'tab-gallery', 'me', 'me-name', 'sign-out',
      'connection-status', 'banner', 'banner-text', 'banner-close', 'secure-notice', 'secure-notice-text'),
  });
  createLoginView({
    store,
    actions,
    el: {
      form: /** @type {HTMLFormElement} */ (byId(doc, 'login-form')),
      input: /** @type {HTMLInputElement} */ (byId(doc, 'username')),
      button: /** @type {HTMLButtonElement} */ (byId(doc, 'login-button')),
      error: byId(doc, 'login-error'),
      hint: byId(doc, 'login-hint'),
    },
  });
  createPeopleView({ store, actions, el: { list: byId(doc, 'people'), empty: byId(doc, 'people-empty') } });
  createStageView({
    store,
    actions,
    el: elements('calls-view', 'call-title', 'call-state', 'call-timer', 'call-message', 'videos', 'remote-video',
      'local-video', 'camera-off', 'stage-placeholder', 'rec-badge', 'rec-text', 'call-summary', 'summary-text',
      'summary-open'),
  });
  createControlsView({
    store,
    actions,
    doc,
    el: elements('call-controls', 'mic-button', 'camera-button', 'devices-button', 'fullscreen-button',
      'snapshot-button', 'hangup-button', 'device-panel', 'camera-select', 'mic-select', 'stage'),
  });
  createChatView({
    store,
    actions,
    el: {
      section: byId(doc, 'chat'),
      log: byId(doc, 'chat-log'),
      form: /** @type {HTMLFormElement} */ (byId(doc, 'chat-form')),
      input: /** @type {HTMLInputElement} */ (byId(doc, 'chat-input')),
      send: /** @type {HTMLButtonElement} */ (byId(doc, 'chat-send')),
      label: byId(doc, 'chat-label'),
    },
  });
  createPhotosView({
    store,
    actions,
    el: elements('photo-status', 'photo-progress', 'photo-message', 'call-photos', 'call-photos-section',
      'photo-toast', 'photo-toast-image', 'photo-toast-text', 'photo-toast-view', 'photo-toast-close', 'lightbox',
      'lightbox-image', 'lightbox-caption', 'lightbox-save', 'lightbox-close'),
  });
  createIncomingView({
    store,
    actions,
    doc,
    win,
    ringer: createRinger(),
    el: {
      dialog: /** @type {HTMLDialogElement} */ (byId(doc, 'incoming')),
      text: byId(doc, 'incoming-text'),
      accept: byId(doc, 'accept-button'),
      decline: byId(doc, 'decline-button'),
    },
  });
  createConnectionTestView({
    el: {
      button: /** @type {HTMLButtonElement} */ (byId(doc, 'conntest-button')),
      step: byId(doc, 'conntest-step'),
      result: byId(doc, 'conntest-result'),
    },
  });
  createGalleryView({
    store,
    doc,
    el: elements('gallery-list', 'gallery-status', 'gallery-refresh', 'gallery-filters', 'gallery-person',
      'gallery-from', 'gallery-to', 'gallery-pager', 'gallery-prev', 'gallery-next', 'gallery-page', 'viewer',
      'viewer-body', 'viewer-title', 'viewer-close', 'confirm-delete', 'confirm-text', 'confirm-error',
      'confirm-cancel', 'confirm-delete-button'),
  });

  win.addEventListener('pagehide', () => calls.endEverything());
  return { store };
}
