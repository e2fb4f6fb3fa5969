/**
 * "Test my connection": runs js/conntest.js and lists what it found, each
 * line marked ok / warning / problem, in plain words with what to fix.
 */

import { fetchRtcConfig } from '../api.js';
import { describeReport, runConnectionTest } from '../conntest.js';
import { clear, h, setText, show } from '../dom.js';
import { describeError, errorCode } from '../errors.js';

/** @type {Record<string, string>} */
const MARKS = Object.freeze({ ok: '✓', warn: '!', bad: '✕', info: 'i' });
/** @type {Record<string, string>} */
const LEVEL_NAMES = Object.freeze({ ok: 'Works', warn: 'Warning', bad: 'Problem', info: 'Note' });

/**
 * @param {object} options
 * @param {{button: HTMLButtonElement, step: HTMLElement, result: HTMLElement}} options.el
 */
export function createConnectionTestView({ el }) {
  el.button.addEventListener('click', async () => {
    el.button.disabled = true;
    setText(el.button, 'Testing…');
    show(el.result, false);
    try {
      // Fresh ICE servers: TURN credentials are short-lived.
      const report = await runConnectionTest(await fetchRtcConfig(), (step) => setText(el.step, step));
      clear(el.result);
      for (const finding of describeReport(report)) {
        el.result.appendChild(h(
          'li',
          { class: 'finding', dataset: { level: finding.level } },
          h('span', { class: 'finding-mark', text: MARKS[finding.level], attrs: { 'aria-hidden': 'true' } }),
          h('span', { class: 'visually-hidden', text: `${LEVEL_NAMES[finding.level]}: ` }),
          h('span', { class: 'finding-text', text: finding.text }),
        ));
      }
      el.result.dataset.server = report.server;
      el.result.dataset.gathered = Object.entries(report.gathered).filter(([, n]) => n > 0).map(([t]) => t).join(' ');
      show(el.result, true);
      setText(el.step, 'Done.');
    } catch (err) {
      setText(el.step, `The test could not run: ${describeError(errorCode(err), { detail: String(err) })}`);
    } finally {
      el.button.disabled = false;
      setText(el.button, 'Test again');
    }
  });
}
