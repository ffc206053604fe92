// js-libp2p clients of golemnet's circuit relay v2 hop service, for
// relay_hop_interop.sh. Two roles, one JSON event per line on stdout:
//   --role listen --relay MA   reserve a slot on the relay MA (/p2p/<relay>)
//                              and listen through it; answer ping and echo
//                              on limited (relayed) connections; print
//                              {"event":"reserved","addr":...} and stay up
//   --role dial --target MA    dial MA (.../p2p-circuit/p2p/<id>) through
//                              the relay, ping PINGS times, echo ECHO_BYTES,
//                              print {"event":"done",...} and exit
// Run: node --import ./polyfill.mjs relay_peer.mjs ...
import { parseArgs } from 'node:util'
import { randomBytes } from 'node:crypto'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { multiaddr } from '@multiformats/multiaddr'

const ECHO = '/echo/1.0.0'
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n')
const log = (...a) => console.error('[relay_peer]', ...a)

const { values: v } = parseArgs({
  options: {
    role: { type: 'string' },
    relay: { type: 'string' },
    target: { type: 'string' },
    pings: { type: 'string', default: '3' },
    'echo-bytes': { type: 'string', default: '32768' },
    timeout: { type: 'string', default: '60' }
  }
})

const listen = v.role === 'listen'
const node = await createLibp2p({
  addresses: { listen: listen ? [`${v.relay}/p2p-circuit`] : [] },
  transports: [tcp(), circuitRelayTransport()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: { identify: identify(), ping: ping() }
})

// echo every byte back until the remote half-closes
await node.handle(ECHO, (stream) => {
  stream.addEventListener('message', (evt) => { stream.send(evt.data.subarray ? evt.data.subarray() : evt.data) })
  stream.addEventListener('remoteCloseWrite', () => { stream.close().catch(() => {}) })
}, { runOnLimitedConnection: true })

const timer = setTimeout(() => { emit({ event: 'timeout' }); process.exit(1) }, Number(v.timeout) * 1000)
process.on('SIGTERM', async () => { await node.stop().catch(() => {}); process.exit(0) })

if (listen) {
  const seen = () => node.getMultiaddrs().map(String).find(a => a.includes('/p2p-circuit'))
  await new Promise((resolve) => {
    if (seen()) { resolve(); return }
    node.addEventListener('self:peer:update', () => { if (seen()) resolve() })
  })
  emit({ event: 'reserved', addr: seen(), peer_id: node.peerId.toString() })
  clearTimeout(timer)
} else {
  try {
    const conn = await node.dial(multiaddr(v.target), { signal: AbortSignal.timeout(20000) })
    const limited = conn.limits != null
    let rtts = []
    for (let i = 0; i < Number(v.pings); i++) {
      rtts.push(await node.services.ping.ping(conn.remoteAddr, { signal: AbortSignal.timeout(10000) }))
    }
    const n = Number(v['echo-bytes'])
    const data = randomBytes(n)
    const stream = await conn.newStream(ECHO, { runOnLimitedConnection: true, signal: AbortSignal.timeout(10000) })
    const chunks = []
    let got = 0
    const done = new Promise((resolve, reject) => {
      stream.addEventListener('message', (evt) => {
        const b = evt.data.subarray ? evt.data.subarray() : evt.data
        chunks.push(Buffer.from(b)); got += b.byteLength
        if (got >= n) resolve()
      })
      stream.addEventListener('close', (evt) => { if (got < n) reject(evt.error ?? new Error(`closed after ${got} bytes`)) })
    })
    stream.send(data)
    await done
    await stream.close().catch(() => {})
    const same = Buffer.compare(Buffer.concat(chunks).subarray(0, n), data) === 0
    emit({ event: 'done', limited, pings: rtts.length, echo_bytes: got, echo_ok: same && got === n })
    clearTimeout(timer)
    await node.stop()
    process.exit(same && got === n ? 0 : 1)
  } catch (err) {
    emit({ event: 'failed', error: `${err.name}: ${err.message}` })
    log(err)
    process.exit(1)
  }
}
