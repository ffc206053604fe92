// js-libp2p circuit relay v2 peer for golemnet's relay interop tests
// (test/interop/js/relay_interop.sh).
//
// Run with:  node --import ./polyfill.mjs relay_peer.mjs [flags]
//
// Roles (combinable):
//   --relay-server            serve /libp2p/circuit/relay/0.2.0/hop (a relay)
//   --listen-relay MA         reserve at the relay MA (/.../p2p/<relay>) and
//                             listen through it (/.../p2p/<relay>/p2p-circuit)
//   --dial MA                 dial MA (a /p2p-circuit address) and run an
//                             echo exchange of --echo-bytes on it
// Every node answers /echo/1.0.0, also on limited (relayed) connections.
//
// stdout carries one JSON object per line; logs go to stderr. Only loopback
// addresses are meant to be used with it.

import { parseArgs } from 'node:util'
import { randomBytes } from 'node:crypto'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'

const ECHO = '/echo/1.0.0'

function emit (obj) { process.stdout.write(JSON.stringify(obj) + '\n') }
function log (...args) { console.error('[relay_peer]', ...args) }
function errText (err) { return err == null ? 'unknown error' : `${err.name ?? 'Error'}: ${err.message ?? String(err)}` }

const { values: f } = parseArgs({
  allowPositionals: false,
  options: {
    listen: { type: 'string', multiple: true, default: [] },
    'relay-server': { type: 'boolean', default: false },
    'max-data': { type: 'string', default: '' },
    'max-duration-ms': { type: 'string', default: '' },
    'listen-relay': { type: 'string' },
    dial: { type: 'string' },
    'echo-bytes': { type: 'string', default: '0' },
    'expect-fail': { type: 'boolean', default: false },
    'key-seed': { type: 'string' },
    'exit-after-actions': { type: 'boolean', default: false },
    timeout: { type: 'string', default: '60' }
  }
})

async function keyFromSeed (n) {
  const seed = new Uint8Array(32)
  new DataView(seed.buffer).setUint32(0, Number(n) >>> 0, true)
  seed[31] = 0x72 // 'r': not the seeds other harnesses use
  return generateKeyPairFromSeed('Ed25519', seed)
}

const services = { identify: identify(), ping: ping() }
if (f['relay-server']) {
  const reservations = { maxReservations: 64 }
  if (f['max-data'] !== '') reservations.defaultDataLimit = BigInt(f['max-data'])
  if (f['max-duration-ms'] !== '') reservations.defaultDurationLimit = Number(f['max-duration-ms'])
  services.relay = circuitRelayServer({ reservations })
}

const listen = [...f.listen]
if (f['listen-relay']) listen.push(`${f['listen-relay']}/p2p-circuit`)

const node = await createLibp2p({
  privateKey: f['key-seed'] ? await keyFromSeed(f['key-seed']) : undefined,
  addresses: { listen },
  transports: [tcp(), circuitRelayTransport()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  connectionGater: { denyDialMultiaddr: () => false },
  connectionManager: { inboundConnectionThreshold: 1000 },
  services
})

await node.handle(ECHO, async (stream) => {
  try {
    for await (const chunk of stream) {
      stream.send(chunk.subarray ? chunk.subarray() : chunk)
    }
    await stream.close()
  } catch (err) {
    log('echo stream:', errText(err))
    stream.abort?.(err)
  }
}, { runOnLimitedConnection: true })

node.addEventListener('self:peer:update', () => {
  const addrs = node.getMultiaddrs().map(a => a.toString())
  emit({ event: 'addrs', addrs, relayed: addrs.filter(a => a.includes('/p2p-circuit')) })
})

emit({ event: 'listening', peer_id: node.peerId.toString(), addrs: node.getMultiaddrs().map(a => a.toString()) })

const deadline = setTimeout(() => { log('timeout'); process.exit(3) }, Number(f.timeout) * 1000)

async function echoOn (conn, n) {
  const stream = await conn.newStream(ECHO, { runOnLimitedConnection: true })
  const data = randomBytes(n)
  const got = []
  let have = 0
  const reader = (async () => {
    for await (const chunk of stream) {
      const b = chunk.subarray ? chunk.subarray() : chunk
      got.push(Buffer.from(b))
      have += b.length
      if (have >= n) break
    }
  })()
  for (let off = 0; off < n; off += 65536) {
    const part = data.subarray(off, Math.min(n, off + 65536))
    if (!stream.send(part)) await stream.onDrain?.()
  }
  await reader
  await stream.close().catch(() => {})
  return Buffer.concat(got).equals(data)
}

if (f.dial) {
  try {
    const conn = await node.dial(multiaddr(f.dial), { signal: AbortSignal.timeout(Number(f.timeout) * 1000) })
    emit({ event: 'dialed', peer: conn.remotePeer.toString(), limited: conn.limits != null, remote: conn.remoteAddr.toString() })
    const n = Number(f['echo-bytes'])
    if (n > 0) {
      const ok = await echoOn(conn, n)
      emit({ event: 'echo', bytes: n, ok })
    }
    if (f['expect-fail']) { emit({ event: 'unexpected_success' }); process.exitCode = 1 }
  } catch (err) {
    emit({ event: f['expect-fail'] ? 'dial_failed' : 'error', error: errText(err) })
    if (!f['expect-fail']) process.exitCode = 1
  }
  if (f['exit-after-actions']) {
    clearTimeout(deadline)
    await node.stop()
    process.exit()
  }
}

process.stdin.on('end', async () => { clearTimeout(deadline); await node.stop(); process.exit() })
process.stdin.resume()
