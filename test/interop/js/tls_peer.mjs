// js-libp2p peer for golemnet's /tls/1.0.0 interop test (tls_interop.sh):
// TCP + @libp2p/tls + yamux, identify and ping.
//
//   node --import ./polyfill.mjs tls_peer.mjs [--listen MA] [--dial MA]
//        [--stay] [--key-type Ed25519|secp256k1|RSA] [--count N]
//
// stdout: one JSON event per line (listening, connection_open, ping, done);
// with --dial it pings N times, prints "done" and exits (0 on success), or
// with --stay closes that connection and goes on listening until SIGTERM.
import { parseArgs } from 'node:util'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { tls } from '@libp2p/tls'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'

const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n')
const { values: a } = parseArgs({
  options: {
    listen: { type: 'string' },
    dial: { type: 'string' },
    stay: { type: 'boolean', default: false },
    'key-type': { type: 'string', default: 'Ed25519' },
    count: { type: 'string', default: '3' }
  }
})
const keyType = a['key-type']
const privateKey = await generateKeyPair(keyType, keyType === 'RSA' ? 2048 : undefined)
const node = await createLibp2p({
  privateKey,
  addresses: { listen: a.listen ? [a.listen] : [] },
  transports: [tcp()],
  connectionEncrypters: [tls()],
  streamMuxers: [yamux()],
  services: { identify: identify(), ping: ping() },
  start: false
})
for (const what of ['open', 'close']) {
  node.addEventListener(`connection:${what}`, (evt) => {
    const c = evt.detail
    emit({
      event: `connection_${what}`,
      peer_id: c.remotePeer.toString(),
      direction: c.direction,
      muxer: c.multiplexer ?? null,
      encryption: c.encryption ?? null
    })
  })
}
await node.start()
emit({ event: 'listening', peer_id: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) })
const stop = async () => { await node.stop(); process.exit(0) }
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
if (a.dial) {
  let rc = 0
  try {
    const signal = AbortSignal.timeout(30000)
    const conn = await node.dial(multiaddr(a.dial), { signal })
    for (let i = 0; i < Number(a.count); i++) {
      const rtt = await node.services.ping.ping(conn.remotePeer, { signal })
      emit({ event: 'ping', peer_id: conn.remotePeer.toString(), seq: i, rtt_ms: rtt })
    }
    if (a.stay) await conn.close()
    emit({ event: 'done', ok: true })
  } catch (err) {
    emit({ event: 'done', ok: false, error: String(err?.message ?? err) })
    rc = 1
  }
  if (!a.stay) {
    await node.stop()
    process.exit(rc)
  }
}
