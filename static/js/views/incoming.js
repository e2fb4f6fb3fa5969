/**
 * An incoming call: a dialog with Accept and Decline, a ring tone, the tab
 * title blinking "… is calling", and a system notification when the page is
 * in the background and notifications are allowed.
 */

import { setText } from '../dom.js';
import { watch } from '../store.js';

/**
 * @typedef {import('../state.js').AppState} AppState
 * @typedef {import('../store.js').Store<AppState>} AppStore
 * @typedef {import('../ring.js').Ringer} Ringer
 */

/**
 * @param {object} options
 * @param {AppStore} options.store
 * @param {{dialog: HTMLDialogElement, text: HTMLElement, accept: HTMLElement, decline: HTMLElement}} options.el
 * @param {{accept: () => void, decline: () => void}} options.actions
 * @param {Ringer} options.ringer
 * @param {Document} [options.doc]
 * @param {Window} [options.win]
 */
export function createIncomingView({ store, el, actions, ringer, doc = document, win = window }) {
  const title = doc.title;
  /** @type {ReturnType<typeof setInterval> | undefined} */
  let blink;
  /** @type {Notification | null} */
  let notification = null;

  el.accept.addEventListener('click', () => actions.accept());
  el.decline.addEventListener('click', () => actions.decline());
  el.dialog.addEventListener('cancel', (event) => {
    // Escape declines rather than leaving the caller waiting.
    event.preventDefault();
    actions.decline();
  });

  watch(store, (s) => s.incoming?.from ?? null, (from) => {
    if (from === null) {
      stop();
      return;
    }
    setText(el.text, `${from} is calling you`);
    if (!el.dialog.open) el.dialog.showModal();
    el.accept.focus();
    ringer.start();
    const calling = `📞 ${from} is calling…`;
    let flip = false;
    doc.title = calling;
    clearInterval(blink);
    blink = setInterval(() => {
      flip = !flip;
      doc.title = flip ? title : calling;
    }, 1000);
    notify(from);
  });

  /** @param {string} from */
  function notify(from) {
    const N = /** @type {typeof Notification | undefined} */ (/** @type {any} */ (win).Notification);
    if (!N || N.permission !== 'granted') return;
    // Only when the person may not be looking at the page.
    if (doc.visibilityState === 'visible' && doc.hasFocus()) return;
    try {
      notification = new N(`${from} is calling you`, { body: 'Open Callbot to answer.', tag: 'callbot-incoming', requireInteraction: true });
      notification.addEventListener('click', () => {
        win.focus();
        notification?.close();
      });
    } catch {
      notification = null; // Some browsers allow notifications only from a service worker.
    }
  }

  function stop() {
    ringer.stop();
    clearInterval(blink);
    doc.title = title;
    notification?.close();
    notification = null;
    if (el.dialog.open) el.dialog.close();
  }
}
