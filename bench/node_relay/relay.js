// The signaling relay of the common Node.js WebRTC tutorial (users keyed by
// username, a message names its target in otherUsername, `ws` on the root
// path), kept as the tutorial writes it: the baseline of bench/signaling_bench.py.
// Only the port is taken from the command line and the console logging of
// every message is left out (it would measure the terminal, not the relay).
//
//   node relay.js 8080
const WebSocket = require('ws');

const port = Number(process.argv[2] || 8080);
const wss = new WebSocket.Server({ port });
const users = {};

const sendTo = (ws, message) => {
  ws.send(JSON.stringify(message));
};

wss.on('connection', ws => {
  ws.on('message', message => {
    let data = null;
    try {
      data = JSON.parse(message);
    } catch (error) {
      data = {};
    }
    switch (data.type) {
      case 'login':
        if (users[data.username]) {
          sendTo(ws, { type: 'login', success: false });
        } else {
          users[data.username] = ws;
          ws.username = data.username;
          sendTo(ws, { type: 'login', success: true });
        }
        break;
      case 'offer': {
        const offerRecipient = users[data.otherUsername];
        if (offerRecipient) {
          ws.otherUsername = data.otherUsername;
          sendTo(offerRecipient, { type: 'offer', offer: data.offer, username: ws.username });
        }
        break;
      }
      case 'answer': {
        const answerRecipient = users[data.otherUsername];
        if (answerRecipient) {
          ws.otherUsername = data.otherUsername;
          sendTo(answerRecipient, { type: 'answer', answer: data.answer, username: ws.username });
        }
        break;
      }
      case 'candidate': {
        const candidateRecipient = users[data.otherUsername];
        if (candidateRecipient) {
          sendTo(candidateRecipient, { type: 'candidate', candidate: data.candidate, username: ws.username });
        }
        break;
      }
      case 'close': {
        const closeRecipient = users[data.otherUsername];
        if (closeRecipient) {
          closeRecipient.otherUsername = null;
          sendTo(closeRecipient, { type: 'close', username: ws.username });
        }
        break;
      }
      default:
        sendTo(ws, { type: 'error', message: 'Command not found: ' + data.type });
        break;
    }
  });

  ws.on('close', () => {
    if (ws.username) {
      delete users[ws.username];
      if (ws.otherUsername && users[ws.otherUsername]) {
        sendTo(users[ws.otherUsername], { type: 'close', username: ws.username });
      }
    }
  });
});

wss.on('listening', () => console.log(`relay listening on ${port}`));
