// js-libp2p peer over @libp2p/websockets for golemnet's WebSocket interop
// test (ws_interop.sh). Noise + yamux, identify, ping, /echo/1.0.0.
//
//   node --import ./polyfill.mjs ws_peer.mjs --listen /ip4/127.0.0.1/tcp/0/ws
//   node --import ./polyfill.mjs ws_peer.mjs --dial MA [--ping N] [--echo-bytes N]
//   --listen /ip4/127.0.0.1/tcp/0/wss --cert CERT.pem --key KEY.pem: a /wss listener
//   (dialling /wss: trust the test's certificate with NODE_EXTRA_CA_CERTS)
//
// stdout: one JSON object per line (listening, connection_open, ping, echo,
// done, error); logs go to stderr. Loopback only.

import { parseArgs } from 'node:util'
import { readFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { createLibp2p } from 'libp2p'
import { webSockets } from '@libp2p/websockets'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'

const ECHO = '/echo/1.0.0'
const CHUNK = 64 * 1024

const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n')
const log = (...a) => console.error('[ws_peer]', ...a)
const errText = (e) => `${e?.name ?? 'Error'}: ${e?.message ?? String(e)}`

const { values: v } = parseArgs({
  options: {
    listen: { type: 'string' },
    dial: { type: 'string' },
    ping: { type: 'string', default: '0' },
    'echo-bytes': { type: 'string', default: '0' },
    timeout: { type: 'string', default: '30' },
    cert: { type: 'string' },
    key: { type: 'string' }
  }
})

function waitDrain (stream) {
  if (!stream.writableNeedsDrain) return Promise.resolve()
  return new Promise((resolve, reject) => {
    stream.addEventListener('drain', () => resolve(), { once: true })
    stream.addEventListener('close', (e) => reject(e.error ?? new Error('closed while waiting for drain')), { once: true })
  })
}

// /echo/1.0.0 server: send back every byte, close after the remote's end.
function echoHandler (stream) {
  stream.addEventListener('message', (evt) => {
    if (!stream.send(evt.data)) {
      stream.pause()
      waitDrain(stream).then(() => { if (stream.readStatus === 'paused') stream.resume() }, (err) => stream.abort(err))
    }
  })
  stream.addEventListener('end', () => {
    stream.close().catch((err) => stream.abort(err))
  }, { once: true })
}

async function echoOnce (conn, bytes, signal) {
  const stream = await conn.newStream(ECHO, { signal })
  const data = randomBytes(bytes)
  const chunks = []
  let got = 0
  const reading = new Promise((resolve, reject) => {
    stream.addEventListener('message', (evt) => { const c = evt.data.subarray(); chunks.push(Buffer.from(c)); got += c.byteLength })
    stream.addEventListener('end', () => resolve(), { once: true })
    stream.addEventListener('close', (e) => e.error ? reject(e.error) : resolve(), { once: true })
  })
  for (let off = 0; off < bytes; off += CHUNK) {
    if (!stream.send(data.subarray(off, Math.min(off + CHUNK, bytes)))) await waitDrain(stream)
  }
  await stream.close({ signal })
  await reading
  if (got !== bytes || Buffer.compare(Buffer.concat(chunks), data) !== 0) {
    throw new Error(`echo mismatch: got ${got} of ${bytes} bytes`)
  }
}

const node = await createLibp2p({
  addresses: { listen: v.listen ? [v.listen] : [] },
  // --cert/--key: the https server for a /wss listen (js announces it as /tls/ws)
  transports: [webSockets(v.cert ? { https: { cert: readFileSync(v.cert), key: readFileSync(v.key) } } : {})],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: { identify: identify(), ping: ping() }
})
node.addEventListener('connection:open', (evt) => {
  const c = evt.detail
  emit({ event: 'connection_open', peer_id: c.remotePeer.toString(), remote_addr: c.remoteAddr.toString(), direction: c.direction, muxer: c.multiplexer ?? null, encryption: c.encryption ?? null })
})
await node.handle(ECHO, echoHandler, { maxInboundStreams: 64 })
const stop = async (code) => { try { await node.stop() } catch {} process.exit(code) }
process.on('SIGTERM', () => { stop(0) })
process.on('SIGINT', () => { stop(0) })

if (v.listen) {
  emit({ event: 'listening', peer_id: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) })
}
if (v.dial) {
  const signal = AbortSignal.timeout(Number(v.timeout) * 1000)
  try {
    const conn = await node.dial(multiaddr(v.dial), { signal })
    for (let i = 0; i < Number(v.ping); i++) {
      const rtt = await node.services.ping.ping(conn.remotePeer, { signal })
      emit({ event: 'ping', seq: i, rtt_ms: rtt })
    }
    const eb = Number(v['echo-bytes'])
    if (eb > 0) {
      await echoOnce(conn, eb, signal)
      emit({ event: 'echo', ok: true, bytes: eb })
    }
    emit({ event: 'done', ok: true })
    await stop(0)
  } catch (err) {
    log('dial side failed', errText(err))
    emit({ event: 'error', error: errText(err) })
    await stop(1)
  }
}
