/**
 * Messages with the bot: what the bot says on its application data channel
 * (peer/channels.py), and a field to answer. The log is a polite live
 * region (`role="log"`), so a screen reader reads new messages once.
 */

import { clear, h, setText, show } from '../dom.js';
import { watch } from '../store.js';

/**
 * @typedef {import('../state.js').AppState} AppState
 * @typedef {import('../store.js').Store<AppState>} AppStore
 */

/**
 * @param {object} options
 * @param {AppStore} options.store
 * @param {{section: HTMLElement, log: HTMLElement, form: HTMLFormElement, input: HTMLInputElement, send: HTMLButtonElement, label: HTMLElement}} options.el
 * @param {{sendChat: (text: string) => boolean}} options.actions
 */
export function createChatView({ store, el, actions }) {
  el.form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (actions.sendChat(el.input.value)) el.input.value = '';
    el.input.focus();
  });

  /** @type {number} */
  let shown = 0;

  watch(store, (s) => [s.chat, s.call?.peer ?? ''], ([chat, peer]) => {
    const { channel, entries } = /** @type {import('../state.js').Chat} */ (chat);
    // After the call, only a conversation that happened stays on the page.
    show(el.section, channel !== 'none' && (channel !== 'closed' || entries.length > 0));
    const open = channel === 'open';
    el.input.disabled = !open;
    el.send.disabled = !open;
    // After the call the conversation stays readable; the field goes.
    show(el.form, channel !== 'closed');
    setText(el.label, `Message to ${peer}`);
    el.input.placeholder = open ? `Write to ${peer}` : channel === 'connecting' ? 'Connecting…' : 'The call has ended';
    const last = entries.length ? entries[entries.length - 1].seq : 0;
    if (entries.length === 0 || last < shown) {
      // A new call: start again.
      clear(el.log);
      shown = 0;
    }
    for (const entry of entries) {
      if (entry.seq <= shown) continue;
      el.log.appendChild(h(
        'li',
        { class: `chat-line chat-${entry.from}`, dataset: { from: entry.from } },
        h('span', { class: 'chat-who', text: entry.from === 'me' ? 'You' : String(peer) }),
        h('span', { class: 'chat-text', text: entry.text }),
      ));
    }
    while (el.log.childElementCount > entries.length) el.log.firstElementChild?.remove();
    shown = last;
    el.log.scrollTop = el.log.scrollHeight;
  });
}
