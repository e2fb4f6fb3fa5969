/**
 * Who is online: the bot first, then everyone else by name, each with a
 * Call button (disabled while a call is going on).
 */

import { clear, h } from '../dom.js';
import { isLive } from '../state.js';
import { watch } from '../store.js';

/**
 * @typedef {import('../state.js').AppState} AppState
 * @typedef {import('../store.js').Store<AppState>} AppStore
 */

/**
 * @param {object} options
 * @param {AppStore} options.store
 * @param {{list: HTMLElement, empty: HTMLElement}} options.el
 * @param {{call: (peer: string) => void}} options.actions
 */
export function createPeopleView({ store, el, actions }) {
  watch(store, (s) => [s.users, s.botName, isLive(s.call) || s.call?.phase === 'starting'], ([users, botName, busy]) => {
    render(/** @type {string[]} */ (users), String(botName), Boolean(busy));
  });

  /**
   * @param {string[]} users
   * @param {string} botName
   * @param {boolean} busy
   */
  function render(users, botName, busy) {
    const others = users.filter((u) => u !== botName).sort((a, b) => a.localeCompare(b));
    const ordered = users.includes(botName) ? [botName, ...others] : others;
    // Keep focus on a Call button across re-renders (presence changes often).
    const focused = el.list.contains(document.activeElement)
      ? /** @type {HTMLElement | null} */ (document.activeElement?.closest('li'))?.dataset.username
      : undefined;
    clear(el.list);
    for (const name of ordered) {
      const isBot = name === botName;
      const button = h('button', {
        type: 'button',
        class: 'button button-call',
        text: 'Call',
        disabled: busy,
        attrs: { 'aria-label': `Call ${name}` },
        on: { click: () => actions.call(name) },
      });
      el.list.appendChild(
        h(
          'li',
          { class: `person${isBot ? ' person-bot' : ''}`, dataset: { username: name } },
          h('span', { class: 'avatar', attrs: { 'aria-hidden': 'true' }, text: name[0].toUpperCase() }),
          h(
            'span',
            { class: 'person-text' },
            h('span', { class: 'person-name', text: name, title: name }),
            h('span', { class: 'person-note', text: isBot ? 'Bot · records the call' : 'Online' }),
          ),
          button,
        ),
      );
      if (focused === name) button.focus();
    }
    el.empty.hidden = ordered.length > 0;
  }
}
