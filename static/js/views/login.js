/**
 * The sign-in form. An error is tied to the input (`aria-invalid`, and
 * `aria-describedby` naming the error text) so a screen reader reads it with
 * the field.
 */

import { setText } from '../dom.js';
import { watch } from '../store.js';

/**
 * @typedef {import('../state.js').AppState} AppState
 * @typedef {import('../store.js').Store<AppState>} AppStore
 */

/**
 * @param {object} options
 * @param {AppStore} options.store
 * @param {{form: HTMLFormElement, input: HTMLInputElement, button: HTMLButtonElement, error: HTMLElement, hint: HTMLElement}} options.el
 * @param {{login: (username: string) => void}} options.actions
 */
export function createLoginView({ store, el, actions }) {
  el.form.addEventListener('submit', (event) => {
    event.preventDefault();
    actions.login(el.input.value.trim());
  });

  watch(store, (s) => s.loginError, (error) => {
    setText(el.error, error || '');
    if (error) {
      el.input.setAttribute('aria-invalid', 'true');
      el.input.setAttribute('aria-describedby', `${el.error.id} ${el.hint.id}`);
    } else {
      el.input.removeAttribute('aria-invalid');
      el.input.setAttribute('aria-describedby', el.hint.id);
    }
  });

  watch(store, (s) => s.signingIn, (busy) => {
    el.button.disabled = busy;
    setText(el.button, busy ? 'Signing in…' : 'Sign in');
  });

  watch(store, (s) => s.me === null && s.tab === 'calls', (visible) => {
    if (visible) el.input.focus();
  });
}
