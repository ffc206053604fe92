// js-libp2p Kademlia DHT peer (@libp2p/kad-dht) for golemnet's interop tests.
//
// Run with:  node --import ./polyfill.mjs dht_peer.mjs [flags]   (see README.md, "kad-dht")
//
// The node starts at once (tcp, noise, yamux, identify, ping, kad-dht in
// server mode on /ipfs/kad/1.0.0) and prints {"event":"listening",...}.  It is
// then driven by JSON commands on stdin, one object per line:
//
//   {"id":1,"cmd":"put","key":"/test/a","value":"hello"}
//
// and answers each with one JSON line on stdout carrying the same id:
//
//   {"reply":"put","id":1,"ok":true,...}   or   {"reply":"put","id":1,"ok":false,"error":"..."}
//
// Other stdout lines are events ({"event":...}).  Human logs go to stderr.
// Every command is bounded by its "timeout_ms" (default 30000).  Commands run
// concurrently; match replies by id.  Only loopback addresses are meant to be
// used with it.

import { parseArgs } from 'node:util'
import { setMaxListeners } from 'node:events'
import { createInterface } from 'node:readline'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { kadDHT, passthroughMapper, removePrivateAddressesMapper, removePublicAddressesMapper } from '@libp2p/kad-dht'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import * as raw from 'multiformats/codecs/raw'

const DEFAULT_TIMEOUT_MS = 30000
const MAX_TIMEOUT_MS = 600000
const TEST_NAMESPACE = 'test'

// ---------------------------------------------------------------- output

function emit (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

function log (...args) {
  console.error('[dht-peer]', ...args)
}

function errText (err) {
  if (err == null) return 'unknown error'
  const name = err.name ?? 'Error'
  return `${name}: ${err.message ?? String(err)}`
}

const hex = (u8) => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength).toString('hex')

// UTF-8 text of bytes, or null when they are not valid UTF-8
function utf8OrNull (u8) {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(u8)
  } catch {
    return null
  }
}

// ---------------------------------------------------------------- flags

const USAGE = `usage: node --import ./polyfill.mjs dht_peer.mjs [flags]
  --listen MA            listen on MA (repeatable; default /ip4/127.0.0.1/tcp/0)
  --key-seed N           deterministic Ed25519 key (seed bytes 0..3 = N little-endian, as peer.mjs)
  --client-mode          run kad-dht in client mode (default: server mode)
  --peer-info-mapper M   passthrough (default) | remove-private (js default) | remove-public
  --protocol P           DHT protocol id (default /ipfs/kad/1.0.0)
  --inbound-threshold N  js connection manager: inbound connections/s per host (default 1000)
  --help
commands on stdin (JSON lines, "id" echoed back, optional "timeout_ms"):
  listen | dial {addr} | put {key,value} | get {key} | provide {cid} |
  find-providers {cid[,count]} | find-peer {peer_id[,use_cache]} |
  closest-peers {key | key_hex | peer_id} | routing-table | wait-routing {peers | size} | quit
  keys: "key" (UTF-8) or "key_hex"; values: "value" (UTF-8) or "value_hex";
  content: "cid" (CID string) or "mh_hex" (multihash hex, the wire key)`

function parseFlags () {
  const { values } = parseArgs({
    allowPositionals: false,
    options: {
      listen: { type: 'string', multiple: true },
      'key-seed': { type: 'string' },
      'client-mode': { type: 'boolean', default: false },
      'peer-info-mapper': { type: 'string', default: 'passthrough' },
      protocol: { type: 'string', default: '/ipfs/kad/1.0.0' },
      'inbound-threshold': { type: 'string', default: '1000' },
      help: { type: 'boolean', default: false }
    }
  })
  if (values.help) {
    console.error(USAGE)
    process.exit(0)
  }
  const int = (name, min, max) => {
    const s = values[name]
    if (!/^[0-9]+$/.test(s)) throw new Error(`--${name}: not a non-negative integer: ${s}`)
    const n = Number(s)
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new Error(`--${name}: out of range [${min}, ${max}]: ${s}`)
    return n
  }
  const mappers = {
    passthrough: passthroughMapper,
    'remove-private': removePrivateAddressesMapper,
    'remove-public': removePublicAddressesMapper
  }
  const mapper = mappers[values['peer-info-mapper']]
  if (mapper == null) throw new Error(`--peer-info-mapper: unknown mapper ${values['peer-info-mapper']}`)
  return {
    listen: values.listen ?? ['/ip4/127.0.0.1/tcp/0'],
    keySeed: values['key-seed'] == null ? null : int('key-seed', 0, 0xffffffff),
    clientMode: values['client-mode'],
    mapperName: values['peer-info-mapper'],
    mapper,
    protocol: values.protocol,
    inboundThreshold: int('inbound-threshold', 1, 1000000)
  }
}

async function privateKeyFromSeed (n) {
  const seed = new Uint8Array(32)
  new DataView(seed.buffer).setUint32(0, n, true)
  return generateKeyPairFromSeed('Ed25519', seed)
}

// ---------------------------------------------------------------- records

// "/test/..." records: any value is valid; among different values the
// lexicographically greatest bytes win (deterministic, so both sides of an
// interop test can implement the same rule).
async function testValidator (key, value) {
  if (!(key instanceof Uint8Array) || !(value instanceof Uint8Array)) {
    throw new Error('test validator: key and value must be bytes')
  }
}

function testSelector (key, records) {
  let best = 0
  for (let i = 1; i < records.length; i++) {
    if (Buffer.compare(Buffer.from(records[i]), Buffer.from(records[best])) > 0) best = i
  }
  return best
}

// ---------------------------------------------------------------- command arguments

class CmdError extends Error {
  constructor (msg) {
    super(msg)
    this.name = 'CommandError'
  }
}

function bytesArg (c, name) {
  if (typeof c[name] === 'string') return new TextEncoder().encode(c[name])
  const h = c[`${name}_hex`]
  if (typeof h === 'string') {
    if (!/^([0-9a-fA-F]{2})*$/.test(h)) throw new CmdError(`${name}_hex: not hex`)
    return new Uint8Array(Buffer.from(h, 'hex'))
  }
  throw new CmdError(`missing "${name}" or "${name}_hex"`)
}

// A content key: "cid" (any CID string; the DHT key is its multihash) or
// "mh_hex" (the multihash bytes themselves, wrapped in a CIDv1 raw).
function cidArg (c) {
  if (typeof c.cid === 'string') {
    try {
      return CID.parse(c.cid)
    } catch (err) {
      throw new CmdError(`cid: ${err.message}`)
    }
  }
  if (typeof c.mh_hex === 'string') {
    try {
      return CID.createV1(raw.code, Digest.decode(new Uint8Array(Buffer.from(c.mh_hex, 'hex'))))
    } catch (err) {
      throw new CmdError(`mh_hex: ${err.message}`)
    }
  }
  throw new CmdError('missing "cid" or "mh_hex"')
}

function peerIdArg (c) {
  if (typeof c.peer_id !== 'string') throw new CmdError('missing "peer_id"')
  try {
    return peerIdFromString(c.peer_id)
  } catch (err) {
    throw new CmdError(`peer_id: ${err.message}`)
  }
}

function timeoutArg (c) {
  const t = c.timeout_ms ?? DEFAULT_TIMEOUT_MS
  if (!Number.isSafeInteger(t) || t < 1 || t > MAX_TIMEOUT_MS) throw new CmdError(`timeout_ms: out of range [1, ${MAX_TIMEOUT_MS}]`)
  return t
}

const peerInfo = (p) => ({ peer_id: p.id.toString(), addrs: (p.multiaddrs ?? []).map(a => a.toString()) })

// Summary of the query events of one operation: which peers answered, which failed.
function tally () {
  const responded = new Set()
  const errors = []
  return {
    responded,
    errors,
    add (ev) {
      if (ev.name === 'PEER_RESPONSE') responded.add(ev.from.toString())
      else if (ev.name === 'QUERY_ERROR') errors.push({ from: ev.from?.toString() ?? null, error: errText(ev.error) })
    },
    out () {
      return { responded: [...responded].sort(), query_errors: errors.length, first_errors: errors.slice(0, 3) }
    }
  }
}

// ---------------------------------------------------------------- commands

function makeCommands (node, cfg) {
  const dht = node.services.dht

  const routingTablePeers = () => {
    const ids = []
    for (const p of dht.routingTable.kb.toIterable()) ids.push(p.peerId.toString())
    return ids.sort()
  }

  return {
    listen: async () => ({
      peer_id: node.peerId.toString(),
      addrs: node.getMultiaddrs().map(a => a.toString()),
      mode: dht.getMode(),
      protocols: node.getProtocols().slice().sort()
    }),

    // Connects to addr (a full multiaddr with /p2p/).  The remote joins the
    // routing table later, by itself, once identify lists the DHT protocol and
    // a ping answers (use wait-routing).
    dial: async (c, signal) => {
      if (typeof c.addr !== 'string') throw new CmdError('missing "addr"')
      const conn = await node.dial(multiaddr(c.addr), { signal })
      return { peer_id: conn.remotePeer.toString(), remote_addr: conn.remoteAddr.toString() }
    },

    // Stores the record locally, then FIND_NODE lookup for the key and
    // PUT_VALUE to the closest peers that answered.
    put: async (c, signal) => {
      const key = bytesArg(c, 'key')
      const value = bytesArg(c, 'value')
      const t = tally()
      const stored = new Set()
      const failed = new Set()
      for await (const ev of dht.put(key, value, { signal })) {
        t.add(ev)
        if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'PUT_VALUE') stored.add(ev.from.toString())
        if (ev.name === 'QUERY_ERROR' && /not put correctly/.test(ev.error?.message ?? '')) failed.add(ev.from.toString())
      }
      for (const f of failed) stored.delete(f)
      return { key_hex: hex(key), stored_at: [...stored].sort(), ...t.out() }
    },

    // The whole GET_VALUE query runs to its end (js collects every value,
    // picks the best with the namespace's selector and sends corrections).
    get: async (c, signal) => {
      const key = bytesArg(c, 'key')
      const t = tally()
      let found = null
      const valuesFrom = new Set()
      // dht.get yields only the chosen value; the PEER_RESPONSE events show
      // which peers returned a record that passed validation
      for await (const ev of dht.get(key, { signal })) {
        t.add(ev)
        if (ev.name === 'VALUE') found = ev
        if (ev.name === 'PEER_RESPONSE' && ev.record != null) valuesFrom.add(ev.from.toString())
      }
      if (found == null) {
        const e = new Error('no value found')
        e.name = 'NotFoundError'
        e.details = t.out()
        throw e
      }
      return {
        key_hex: hex(key),
        value: utf8OrNull(found.value),
        value_hex: hex(found.value),
        from: found.from.toString(),
        values_from: [...valuesFrom].sort(),
        ...t.out()
      }
    },

    // ADD_PROVIDER with key = the CID's multihash bytes, to the closest peers
    // of that key found by a FIND_NODE lookup.
    provide: async (c, signal) => {
      const cid = cidArg(c)
      const t = tally()
      const sent = new Set()
      for await (const ev of dht.provide(cid, { signal })) {
        t.add(ev)
        if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'ADD_PROVIDER') sent.add(ev.from.toString())
      }
      return { cid: cid.toString(), mh_hex: hex(cid.multihash.bytes), sent_to: [...sent].sort(), ...t.out() }
    },

    // Providers of the CID (local ones first), until "count" distinct
    // providers were found or the query ended.
    'find-providers': async (c, signal) => {
      const cid = cidArg(c)
      const count = c.count ?? 20
      if (!Number.isSafeInteger(count) || count < 1) throw new CmdError('count: must be a positive integer')
      const t = tally()
      const providers = new Map()
      const ac = new AbortController()
      const sig = AbortSignal.any([signal, ac.signal])
      setMaxListeners(Infinity, sig)
      try {
        for await (const ev of dht.findProviders(cid, { signal: sig })) {
          t.add(ev)
          if (ev.name === 'PROVIDER') {
            for (const p of ev.providers) {
              if (!providers.has(p.id.toString())) providers.set(p.id.toString(), { ...peerInfo(p), from: ev.from.toString() })
            }
            if (providers.size >= count) break
          }
        }
      } catch (err) {
        if (!(ac.signal.aborted && !signal.aborted)) throw err
      }
      return { cid: cid.toString(), mh_hex: hex(cid.multihash.bytes), providers: [...providers.values()], ...t.out() }
    },

    // use_cache false (the default here) skips js's local answer (routing
    // table / peer store) and always runs the FIND_NODE lookup.
    'find-peer': async (c, signal) => {
      const id = peerIdArg(c)
      const useCache = c.use_cache === true
      const t = tally()
      let found = null
      for await (const ev of dht.findPeer(id, { signal, useCache })) {
        t.add(ev)
        if (ev.name === 'FINAL_PEER' && found == null) found = ev
      }
      if (found == null) throw new Error('peer not found')
      return { ...peerInfo(found.peer), from: found.from.toString(), ...t.out() }
    },

    'closest-peers': async (c, signal) => {
      let key
      if (typeof c.peer_id === 'string') key = peerIdArg(c).toMultihash().bytes
      else key = bytesArg(c, 'key')
      const t = tally()
      const peers = []
      for await (const ev of dht.getClosestPeers(key, { signal })) {
        t.add(ev)
        if (ev.name === 'FINAL_PEER') peers.push(peerInfo(ev.peer))
      }
      return { key_hex: hex(key), peers, ...t.out() }
    },

    'routing-table': async () => {
      const peers = routingTablePeers()
      return { size: dht.routingTable.size, peers }
    },

    // Waits until the routing table holds every peer id in "peers" and/or at
    // least "size" peers.
    'wait-routing': async (c, signal) => {
      const want = Array.isArray(c.peers) ? c.peers.map(String) : []
      const size = c.size ?? 0
      const done = () => {
        const have = new Set(routingTablePeers())
        return want.every(p => have.has(p)) && have.size >= size
      }
      while (!done()) {
        await new Promise((resolve, reject) => {
          const t = setTimeout(finish, 100)
          function finish () {
            clearTimeout(t)
            signal.removeEventListener('abort', onAbort)
            resolve()
          }
          function onAbort () {
            clearTimeout(t)
            reject(signal.reason ?? new Error('aborted'))
          }
          signal.addEventListener('abort', onAbort, { once: true })
        })
      }
      const peers = routingTablePeers()
      return { size: peers.length, peers }
    }
  }
}

// ---------------------------------------------------------------- main

async function main () {
  let cfg
  try {
    cfg = parseFlags()
  } catch (err) {
    console.error(err.message)
    console.error(USAGE)
    process.exit(2)
  }
  const privateKey = cfg.keySeed == null ? undefined : await privateKeyFromSeed(cfg.keySeed)
  const node = await createLibp2p({
    ...(privateKey != null ? { privateKey } : {}),
    addresses: { listen: cfg.listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { inboundConnectionThreshold: cfg.inboundThreshold },
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        protocol: cfg.protocol,
        clientMode: cfg.clientMode,
        peerInfoMapper: cfg.mapper,
        validators: { [TEST_NAMESPACE]: testValidator },
        selectors: { [TEST_NAMESPACE]: testSelector }
      })
    },
    start: false
  })
  const dht = node.services.dht

  node.addEventListener('connection:open', (evt) => {
    const c = evt.detail
    emit({ event: 'connection_open', peer_id: c.remotePeer.toString(), remote_addr: c.remoteAddr.toString(), direction: c.direction })
  })
  node.addEventListener('connection:close', (evt) => {
    const c = evt.detail
    emit({ event: 'connection_close', peer_id: c.remotePeer.toString(), remote_addr: c.remoteAddr.toString(), direction: c.direction })
  })
  node.addEventListener('peer:identify', (evt) => {
    const r = evt.detail
    emit({
      event: 'peer_identify',
      peer_id: r.peerId.toString(),
      protocols: [...r.protocols].sort(),
      listen_addrs: r.listenAddrs.map(a => a.toString()),
      agent_version: r.agentVersion ?? null
    })
  })
  dht.routingTable.addEventListener('peer:add', (evt) => {
    emit({ event: 'rt_add', peer_id: evt.detail.toString(), size: dht.routingTable.size })
  })
  dht.routingTable.addEventListener('peer:remove', (evt) => {
    emit({ event: 'rt_remove', peer_id: evt.detail.toString(), size: dht.routingTable.size })
  })

  await node.start()

  let stopping = false
  const shutdown = async (code, why) => {
    if (stopping) return
    stopping = true
    log(`stopping (${why})`)
    const force = setTimeout(() => {
      log('stop timed out, exiting')
      process.exit(code)
    }, 5000)
    force.unref()
    try {
      await node.stop()
    } catch (err) {
      log('stop failed', errText(err))
    }
    emit({ event: 'stopped', code })
    process.exit(code)
  }
  process.on('SIGTERM', () => { shutdown(0, 'SIGTERM') })
  process.on('SIGINT', () => { shutdown(0, 'SIGINT') })

  emit({
    event: 'listening',
    peer_id: node.peerId.toString(),
    addrs: node.getMultiaddrs().map(a => a.toString()),
    mode: dht.getMode(),
    peer_info_mapper: cfg.mapperName,
    protocol: cfg.protocol
  })

  const commands = makeCommands(node, cfg)

  const run = async (line) => {
    let c
    try {
      c = JSON.parse(line)
      if (c == null || typeof c !== 'object' || typeof c.cmd !== 'string') throw new Error('not a command object')
    } catch (err) {
      emit({ reply: 'invalid', id: null, ok: false, error: `bad command line: ${err.message}` })
      return
    }
    const base = { reply: c.cmd, id: c.id ?? null }
    if (c.cmd === 'quit') {
      emit({ ...base, ok: true })
      await shutdown(0, 'quit')
      return
    }
    const fn = commands[c.cmd]
    if (fn == null) {
      emit({ ...base, ok: false, error: `unknown command ${c.cmd}` })
      return
    }
    const t0 = process.hrtime.bigint()
    let signal
    try {
      signal = AbortSignal.timeout(timeoutArg(c))
      setMaxListeners(Infinity, signal)
      const out = await fn(c, signal)
      const ms = Number(process.hrtime.bigint() - t0) / 1e6
      emit({ ...base, ok: true, ms: Math.round(ms), ...out })
    } catch (err) {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6
      const e = signal?.aborted === true ? (signal.reason ?? err) : err
      emit({ ...base, ok: false, ms: Math.round(ms), error: errText(e), ...(err?.details ?? {}) })
    }
  }

  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity })
  rl.on('line', (line) => {
    if (line.trim() === '') return
    run(line).catch((err) => log('command failed', errText(err)))
  })
  // stdin closed: the controller is gone
  rl.on('close', () => { shutdown(0, 'stdin closed') })
}

main().catch((err) => {
  log('fatal', err?.stack ?? errText(err))
  emit({ event: 'error', action: 'main', error: errText(err) })
  process.exit(1)
})
