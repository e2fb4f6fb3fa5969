/**
 * The page's frame: which section shows, the tabs, who is signed in, the
 * connection line ("Reconnecting…"), the error banner and the notice that
 * the camera needs a secure page.
 */

import { append, clear, h, setText, show } from '../dom.js';
import { watch } from '../store.js';

/**
 * @typedef {import('../state.js').AppState} AppState
 * @typedef {import('../store.js').Store<AppState>} AppStore
 */

/**
 * @param {object} options
 * @param {AppStore} options.store
 * @param {Record<string, HTMLElement>} options.el  by id: login-view, calls-view, gallery-view, tab-calls,
 *   tab-gallery, me, me-name, sign-out, connection-status, banner, banner-text, banner-close,
 *   secure-notice, secure-notice-text
 * @param {{showTab: (tab: 'calls' | 'gallery') => void, signOut: () => void, dismissBanner: () => void}} options.actions
 * @param {Window} [options.win]
 */
export function createChromeView({ store, el, actions, win = window }) {
  el['tab-calls'].addEventListener('click', () => actions.showTab('calls'));
  el['tab-gallery'].addEventListener('click', () => actions.showTab('gallery'));
  el['sign-out'].addEventListener('click', () => actions.signOut());
  el['banner-close'].addEventListener('click', () => actions.dismissBanner());

  // Arrow keys move between tabs (WAI-ARIA Authoring Practices, Tabs).
  for (const tab of [el['tab-calls'], el['tab-gallery']]) {
    tab.addEventListener('keydown', (event) => {
      if (event.key !== 'ArrowRight' && event.key !== 'ArrowLeft') return;
      const next = tab === el['tab-calls'] ? 'gallery' : 'calls';
      actions.showTab(next);
      el[`tab-${next}`].focus();
    });
  }

  watch(store, (s) => [s.tab, s.me !== null], ([tab, signedIn]) => {
    const calls = tab === 'calls';
    show(el['login-view'], calls && !signedIn);
    show(el['calls-view'], calls && Boolean(signedIn));
    show(el['gallery-view'], !calls);
    el['tab-calls'].setAttribute('aria-selected', String(calls));
    el['tab-gallery'].setAttribute('aria-selected', String(!calls));
    el['tab-calls'].tabIndex = calls ? 0 : -1;
    el['tab-gallery'].tabIndex = calls ? -1 : 0;
  });

  watch(store, (s) => s.me, (me) => {
    show(el.me, me !== null);
    setText(el['me-name'], me || '');
    if (me) el['me-name'].title = me;
  });

  watch(store, (s) => [s.connection, s.serverRestarting, s.me !== null], ([connection, restarting]) => {
    const reconnecting = connection === 'reconnecting';
    el.me.dataset.connection = String(connection);
    show(el['connection-status'], reconnecting);
    if (reconnecting) {
      setText(el['connection-status'], restarting
        ? 'The server is restarting. Reconnecting…'
        : 'Connection to the server lost. Reconnecting…');
    } else {
      setText(el['connection-status'], '');
    }
  });

  watch(store, (s) => s.banner, (banner) => {
    show(el.banner, banner !== null);
    setText(el['banner-text'], banner?.text || '');
    el.banner.dataset.kind = banner?.kind || 'error';
  });

  // getUserMedia needs a secure context (https, or localhost): say so at
  // once, before anyone tries to call.
  if (!win.isSecureContext) {
    const { host, pathname, search } = win.location;
    const secure = `https://${host}${pathname}${search}`;
    clear(el['secure-notice-text']);
    append(el['secure-notice-text'],
      'Your browser lets a page use the camera and microphone only over https '
      + '(or as localhost on the server’s own computer). Open ',
      h('a', { href: secure, text: secure }),
      ' instead. The server must run with --self-signed (or a certificate); your browser then warns '
      + 'about the certificate once: continue only if you know this server.');
    show(el['secure-notice'], true);
  }
}
