// js-libp2p pubsub peer for golemnet's pubsub interop test (issue 18):
// @libp2p/gossipsub or @libp2p/floodsub over TCP, Noise and yamux.
//
// Run with:  node --import ./polyfill.mjs pubsub_peer.mjs [flags]
//
// stdout carries one JSON object per line (events):
//   {"event":"listening","peer_id":..,"addrs":[..]}
//   {"event":"subscription_change","peer_id":..,"topic":..,"subscribe":bool}
//   {"event":"message","topic":..,"from":..,"data":"<utf-8>","seqno":"<hex>","type":"signed"|"unsigned"}
//   {"event":"published","topic":..,"index":i,"recipients":n}
//   {"event":"publish_failed","topic":..,"index":i,"error":..}
//   {"event":"done"}
// everything else goes to stderr. Only loopback addresses are meant to be used.

import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { gossipsub } from '@libp2p/gossipsub'
import { floodsub } from '@libp2p/floodsub'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'

const USAGE = `usage: node --import ./polyfill.mjs pubsub_peer.mjs [flags]
  --router R          gossipsub (default) or floodsub
  --listen MA         listen on MA (repeatable), e.g. /ip4/127.0.0.1/tcp/0
  --dial MA           dial MA (repeatable; a full multiaddr with /p2p/<id>)
  --key-seed N        deterministic Ed25519 key (seed bytes 0..3 = N little-endian)
  --topic T           subscribe to T (repeatable)
  --publish N         publish N messages "js-<seed>-<i>" on the first topic once
                      --wait-peers peers are subscribed to it (default 0)
  --publish-interval-ms MS  between publishes (default 200)
  --wait-peers K      peers subscribed to the topic before publishing (default 1)
  --publish-delay-ms MS  then wait this long (default 1500 gossipsub, 500 floodsub)
  --sign-policy P     StrictSign (default) or StrictNoSign
  --run-ms MS         exit this long after start (default 20000)
  --help`

function emit (obj) { process.stdout.write(JSON.stringify(obj) + '\n') }
function log (...args) { console.error('[pubsub_peer]', ...args) }

const { values: v } = parseArgs({
  allowPositionals: false,
  options: {
    router: { type: 'string', default: 'gossipsub' },
    listen: { type: 'string', multiple: true, default: [] },
    dial: { type: 'string', multiple: true, default: [] },
    'key-seed': { type: 'string' },
    topic: { type: 'string', multiple: true, default: [] },
    publish: { type: 'string', default: '0' },
    'publish-interval-ms': { type: 'string', default: '200' },
    'wait-peers': { type: 'string', default: '1' },
    'publish-delay-ms': { type: 'string' },
    'sign-policy': { type: 'string', default: 'StrictSign' },
    'run-ms': { type: 'string', default: '20000' },
    help: { type: 'boolean' }
  }
})
if (v.help) { console.error(USAGE); process.exit(0) }
if (v.router !== 'gossipsub' && v.router !== 'floodsub') {
  console.error(`--router must be gossipsub or floodsub, not '${v.router}'`)
  process.exit(2)
}
if (v['sign-policy'] !== 'StrictSign' && v['sign-policy'] !== 'StrictNoSign') {
  console.error(`--sign-policy must be StrictSign or StrictNoSign, not '${v['sign-policy']}'`)
  process.exit(2)
}

let privateKey
if (v['key-seed'] != null) {
  const seed = new Uint8Array(32)
  new DataView(seed.buffer).setUint32(0, Number(v['key-seed']) >>> 0, true)
  privateKey = await generateKeyPairFromSeed('Ed25519', seed)
}

const psOpts = { globalSignaturePolicy: v['sign-policy'] }
const pubsub = v.router === 'gossipsub'
  ? gossipsub({ ...psOpts, allowPublishToZeroTopicPeers: false, emitSelf: false, heartbeatInterval: 700 })
  : floodsub({ ...psOpts, emitSelf: false })

const node = await createLibp2p({
  ...(privateKey != null ? { privateKey } : {}),
  addresses: { listen: v.listen },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  connectionManager: { inboundConnectionThreshold: 1000 },
  services: { identify: identify(), pubsub }
})
const ps = node.services.pubsub

ps.addEventListener('subscription-change', (evt) => {
  for (const s of evt.detail.subscriptions) {
    emit({ event: 'subscription_change', peer_id: evt.detail.peerId.toString(), topic: s.topic, subscribe: s.subscribe })
  }
})
ps.addEventListener('message', (evt) => {
  // gossipsub wraps the message ({msgId, propagationSource, msg}); floodsub does not
  const m = evt.detail.msg ?? evt.detail
  emit({
    event: 'message',
    topic: m.topic,
    type: m.type,
    from: m.from != null ? m.from.toString() : null,
    seqno: m.sequenceNumber != null ? m.sequenceNumber.toString(16) : null,
    data: new TextDecoder().decode(m.data)
  })
})

emit({ event: 'listening', peer_id: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) })

for (const t of v.topic) ps.subscribe(t)
for (const d of v.dial) {
  try {
    await node.dial(multiaddr(d))
  } catch (err) {
    emit({ event: 'dial_failed', addr: d, error: String(err?.message ?? err) })
  }
}

const deadline = Date.now() + Number(v['run-ms'])
const count = Number(v.publish)
if (count > 0 && v.topic.length > 0) {
  const topic = v.topic[0]
  const want = Number(v['wait-peers'])
  while (ps.getSubscribers(topic).length < want && Date.now() < deadline) await sleep(100)
  // gossipsub: let a heartbeat build the mesh first. floodsub: js's own
  // outbound stream to the peer may still be negotiating when the peer's
  // subscription arrives, and js drops what it writes before then (seen
  // against golemnet: the first message was lost)
  await sleep(v['publish-delay-ms'] != null ? Number(v['publish-delay-ms']) : (v.router === 'gossipsub' ? 1500 : 500))
  for (let i = 0; i < count && Date.now() < deadline; i++) {
    const text = `js-${v['key-seed'] ?? 'x'}-${i}`
    try {
      const r = await ps.publish(topic, new TextEncoder().encode(text))
      emit({ event: 'published', topic, index: i, data: text, recipients: r.recipients.length })
    } catch (err) {
      emit({ event: 'publish_failed', topic, index: i, error: String(err?.message ?? err) })
    }
    await sleep(Number(v['publish-interval-ms']))
  }
}

const stop = async () => {
  emit({ event: 'done' })
  try { await node.stop() } catch (err) { log('stop:', err) }
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
await sleep(Math.max(0, deadline - Date.now()))
await stop()
