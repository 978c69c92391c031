// An AnyCable HTTP RPC back end built on @anycable/serverless-js, the
// third-party peer of Cablehub's HTTP RPC client (server/rpc), driven by
// e2e/rpc_http_serverless_test.go.
//
// It listens on 127.0.0.1 (PORT, default: any free port) and prints
// "listening <port>" once ready. Like the application side of AnyCable's
// HTTP RPC, it requires "Authorization: Bearer <RPC_SECRET>" when
// RPC_SECRET is set and answers 401 otherwise (serverless-js's handler
// itself does not check it). Requests are logged on stderr.
//
// Connections identify by ?user= in the URL or, failing that, a `user`
// cookie; channel `chat` streams room:<room> and rejects a subscription
// without a room; action `echo` transmits {echo: <data>, user}.
import http from 'node:http';
import { Application, Channel, handler } from '@anycable/serverless-js';

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
}

const app = new CableApp();
app.registerChannel('chat', new ChatChannel());

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
