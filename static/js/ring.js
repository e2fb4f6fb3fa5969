/**
 * A ring tone made with WebAudio (no sound file to download): two sine
 * tones together, 440 and 480 Hz as a telephone rings, one second on and
 * two off, with short fades so it does not click.
 */

/**
 * @typedef {object} Ringer
 * @property {() => void} start  rings until stop (again: no-op)
 * @property {() => void} stop
 * @property {() => boolean} ringing
 */

const TONES = Object.freeze([440, 480]);
const ON_S = 1.0;
const PERIOD_S = 3.0;
const VOLUME = 0.12;

/**
 * @param {{audioContext?: () => AudioContext}} [options]  how to make the context
 * @returns {Ringer}
 */
export function createRinger({ audioContext = () => new AudioContext() } = {}) {
  /** @type {AudioContext | null} */
  let context = null;
  /** @type {ReturnType<typeof setInterval> | undefined} */
  let timer;
  let on = false;

  function burst() {
    if (!context) return;
    const t = context.currentTime + 0.02;
    const gain = context.createGain();
    gain.gain.setValueAtTime(0, t);
    gain.gain.linearRampToValueAtTime(VOLUME, t + 0.05);
    gain.gain.setValueAtTime(VOLUME, t + ON_S - 0.05);
    gain.gain.linearRampToValueAtTime(0, t + ON_S);
    gain.connect(context.destination);
    for (const frequency of TONES) {
      const osc = context.createOscillator();
      osc.frequency.value = frequency;
      osc.connect(gain);
      osc.start(t);
      osc.stop(t + ON_S);
    }
  }

  function start() {
    if (on) return;
    on = true;
    try {
      context ??= audioContext();
      // Allowed once the person has interacted with the page (signing in
      // counts); otherwise the ring stays silent and the dialog still shows.
      void context.resume().catch(() => {});
    } catch {
      return;
    }
    burst();
    timer = setInterval(burst, PERIOD_S * 1000);
  }

  function stop() {
    on = false;
    clearInterval(timer);
    if (context) {
      void context.close().catch(() => {});
      context = null;
    }
  }

  return { start, stop, ringing: () => on };
}
