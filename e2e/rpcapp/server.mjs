// An AnyCable HTTP RPC back end built on @anycable/serverless-js, the
// third-party peer of Cablehub's HTTP RPC client (server/rpc), driven by
// e2e/rpc_http_serverless_test.go and e2e/js/rpc_apps.test.js.
//
// It listens on 127.0.0.1 (PORT, default: any free port) and prints
// "listening <port>" once ready, and "disconnected <sid>" for each
// Disconnect call. Like the application side of AnyCable's
// HTTP RPC, it requires "Authorization: Bearer <RPC_SECRET>" when
// RPC_SECRET is set and answers 401 otherwise (serverless-js's handler
// itself does not check it). Requests are logged on stderr.
//
// It reaches Cablehub's REST API (to broadcast and to disconnect users) at
// CABLEHUB_API_URL (such as http://127.0.0.1:8080/api) with the bearer
// token CABLEHUB_API_KEY, or at what a line "cablehub <url> <key>" on
// stdin says, answered by "configured <url>" on stdout: a test can start
// the app before the Cablehub that calls it and tell it where that is.
//
// Connections identify by ?user= in the URL or, failing that, a `user`
// cookie, and are refused without one. Channel `chat` (also registered as
// `ChatChannel`) streams room:<room> and rejects a subscription without a
// room. Its actions:
//   echo       transmits {echo: <data without action>, user}
//   broadcast  publishes {text, from: user} to room:<room> through
//              Cablehub's REST API (serverless-js's own broadcaster)
//   leave      closes the connection (disconnect: true), after a
//              {"type":"disconnect","reason":<reason>,"reconnect":false}
//              frame when data has a reason, as Rails'
//              connection.close(reason:, reconnect: false) does
//   kick       disconnects every connection of this user through
//              Cablehub's REST API (POST <api>/disconnect by identifiers)
import http from 'node:http';
import readline from 'node:readline';
import { Application, Channel, broadcaster, handler } from '@anycable/serverless-js';

// cablehub is where the REST API is, once known.
const cablehub = { url: process.env.CABLEHUB_API_URL || '', key: process.env.CABLEHUB_API_KEY || '' };

function api(path) {
  if (!cablehub.url) throw new Error('Cablehub API URL not configured');
  return `${cablehub.url}${path}`;
}

class CableApp extends Application {
  async connect(handle) {
    const url = new URL(handle.env.url);
    const user = url.searchParams.get('user') || cookie(handle.env.headers?.cookie, 'user');
    if (!user) {
      handle.reject();
      return;
    }
    handle.identifiedBy({ user });
  }

  // disconnect reports on stdout that Cablehub said the session ended.
  async disconnect(handle) {
    console.log(`disconnected ${handle.id}`);
  }
}

function cookie(header, name) {
  for (const part of (header || '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return null;
}

class ChatChannel extends Channel {
  async subscribed(handle, params) {
    if (!params?.room) {
      handle.reject();
      return;
    }
    handle.streamFrom(`room:${params.room}`);
  }

  async echo(handle, _params, data) {
    handle.transmit({ echo: data, user: handle.identifiers.user });
  }

  async broadcast(handle, params, data) {
    const publish = broadcaster(api('/publish'), cablehub.key);
    await publish(`room:${params.room}`, { text: data.text, from: handle.identifiers.user });
  }

  // leave: the ChannelHandle has no close(); its connection's handle does.
  async leave(handle, _params, data) {
    if (data.reason) {
      handle.delegate.transmit({ type: 'disconnect', reason: data.reason, reconnect: false });
    }
    handle.delegate.close();
  }

  async kick(handle) {
    const res = await fetch(api('/disconnect'), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${cablehub.key}` },
      body: JSON.stringify({ identifier: app.encodeIdentifiers(handle.identifiers), reconnect: false }),
    });
    if (!res.ok) throw new Error(`disconnect: ${res.status} ${await res.text()}`);
  }
}

const app = new CableApp();
const chat = new ChatChannel();
app.registerChannel('chat', chat);
app.registerChannel('ChatChannel', chat);

const secret = process.env.RPC_SECRET || '';

const server = http.createServer(async (req, res) => {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const body = Buffer.concat(chunks);
  console.error(`${req.method} ${req.url} sid=${req.headers['x-anycable-meta-sid']} ${body}`);
  if (secret && req.headers.authorization !== `Bearer ${secret}`) {
    res.writeHead(401).end();
    return;
  }
  try {
    const request = new Request(`http://${req.headers.host}${req.url}`, {
      method: req.method,
      headers: {
        'content-type': req.headers['content-type'] || '',
        'x-anycable-meta-sid': req.headers['x-anycable-meta-sid'] || '',
      },
      body,
    });
    const reply = JSON.stringify(await handler(request, app));
    console.error(`<- ${reply}`);
    res.writeHead(200, { 'content-type': 'application/json' }).end(reply);
  } catch (err) {
    console.error(`<- 500 ${err}`);
    res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err));
  }
});

server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});

// Configuration lines on stdin; the app runs on when stdin is closed or
// was never open.
readline.createInterface({ input: process.stdin }).on('line', line => {
  const [word, url, key] = line.trim().split(/\s+/);
  if (word !== 'cablehub' || !url) {
    console.error(`unknown configuration line: ${line}`);
    return;
  }
  cablehub.url = url.replace(/\/$/, '');
  cablehub.key = key || '';
  console.log(`configured ${cablehub.url}`);
});
