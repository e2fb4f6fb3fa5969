/**
 * Small helpers around ICE gathering shared by the connection test and the
 * live viewer, which send one offer with every candidate in it (no trickle).
 */

/**
 * Resolves once `pc` has gathered all its candidates, or after `timeoutMs`
 * (a STUN or TURN server that never answers would otherwise hold it for
 * tens of seconds), whichever comes first.
 * @param {RTCPeerConnection} pc
 * @param {number} timeoutMs
 * @returns {Promise<boolean>}  true if gathering completed
 */
export function gatheringDone(pc, timeoutMs) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') {
      resolve(true);
      return;
    }
    const timer = setTimeout(() => {
      pc.removeEventListener('icegatheringstatechange', onChange);
      resolve(false);
    }, timeoutMs);
    function onChange() {
      if (pc.iceGatheringState !== 'complete') return;
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', onChange);
      resolve(true);
    }
    pc.addEventListener('icegatheringstatechange', onChange);
  });
}

/**
 * The type of an ICE candidate line (RFC 8445 section 5.1.1: host, srflx,
 * prflx, relay), from the `typ` field of its SDP form.
 * @param {string} candidate  "candidate:..." as in RTCIceCandidate.candidate
 * @returns {string | null}
 */
export function candidateType(candidate) {
  const match = / typ (host|srflx|prflx|relay)( |$)/.exec(candidate);
  return match ? match[1] : null;
}
