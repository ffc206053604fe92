// Drives golemnet-p2pd with the libp2p daemon client (@libp2p/daemon-client,
// pinned in package-lock.json) against a js-libp2p node it runs itself.
//
//   node --import ./polyfill.mjs p2pd_client.mjs --control-a MA --id-a ID
//        [--control-b MA --id-b ID]
//
// Daemon A (control socket --control-a, a Unix socket) must run with
// -dhtServer -dhtNamespace test -echo=false; daemon B (optional, loopback TCP
// control socket) with -dhtServer -dhtNamespace test. The js node L listens
// on 127.0.0.1, answers /p2pd-test/echo/1.0.0 (echo until the remote
// closes its write side) and runs kad-dht in server mode with the "test"
// namespace of dht_peer.mjs (any value valid, greatest bytes win).
//
// Output: one JSON line per check on stdout,
//   {"check":NAME,"ok":true|false,"detail":TEXT,"ms":N}
// then {"event":"done","passed":N,"failed":N}. p2pd_interop.sh turns them
// into TAP. Every check is bounded (CHECK_TIMEOUT_MS); the process exits
// by itself. Human logs go to stderr.

import { parseArgs } from 'node:util'
import net from 'node:net'
import { randomBytes, createHash } from 'node:crypto'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { createClient } from '@libp2p/daemon-client'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'

const CHECK_TIMEOUT_MS = 30000
const ECHO_PROTO = '/p2pd-test/echo/1.0.0'
const XOR_PROTO = '/p2pd-test/xor/1.0.0'
const STREAM_BYTES = 1 << 20 // through STREAM_OPEN, both ways
const HANDLER_BYTES = 256 * 1024 // through STREAM_HANDLER, both ways
const CHUNK = 16 * 1024

const log = (...a) => console.error('[p2pd-client]', ...a)
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n')
const errText = (e) => (e == null ? 'unknown error' : `${e.name ?? 'Error'}: ${e.message ?? String(e)}`)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const enc = (s) => new TextEncoder().encode(s)
const dec = (u8) => new TextDecoder().decode(u8)

const { values: args } = parseArgs({
  options: {
    'control-a': { type: 'string' },
    'id-a': { type: 'string' },
    'control-b': { type: 'string' },
    'id-b': { type: 'string' }
  }
})
if (args['control-a'] == null || args['id-a'] == null) {
  console.error('usage: p2pd_client.mjs --control-a MA --id-a ID [--control-b MA --id-b ID]')
  process.exit(2)
}

let passed = 0
let failed = 0

// Runs one bounded check; false when it failed (the next checks may depend on it).
async function check (name, fn, timeoutMs = CHECK_TIMEOUT_MS) {
  const t0 = Date.now()
  let timer
  try {
    const detail = await Promise.race([
      fn(),
      new Promise((resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs)
      })
    ])
    passed++
    emit({ check: name, ok: true, detail: detail ?? '', ms: Date.now() - t0 })
    return true
  } catch (err) {
    failed++
    emit({ check: name, ok: false, detail: errText(err), ms: Date.now() - t0 })
    log(name, err)
    return false
  } finally {
    clearTimeout(timer)
  }
}

function assert (cond, msg) {
  if (!cond) throw new Error(msg)
}

// Polls fn() until it returns a truthy value, at most ms.
async function until (what, fn, ms = 20000, every = 250) {
  const end = Date.now() + ms
  let last
  while (Date.now() < end) {
    try {
      const v = await fn()
      if (v) return v
    } catch (err) {
      last = err
    }
    await sleep(every)
  }
  throw new Error(`${what}: not within ${ms} ms${last ? ` (last error: ${errText(last)})` : ''}`)
}

// ---------------------------------------------------------------- streams

// Resolves when js may send again (the 'drain' event, see peer.mjs waitDrain).
function waitDrain (stream) {
  if (!stream.writableNeedsDrain) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const done = (err) => {
      stream.removeEventListener('drain', onDrain)
      stream.removeEventListener('close', onClose)
      if (err) reject(err)
      else resolve()
    }
    const onDrain = () => done()
    const onClose = (evt) => done(evt.error ?? new Error('closed while waiting for drain'))
    stream.addEventListener('drain', onDrain)
    stream.addEventListener('close', onClose)
  })
}

async function writeAll (stream, data) {
  for (let off = 0; off < data.byteLength; off += CHUNK) {
    if (!stream.send(data.subarray(off, Math.min(off + CHUNK, data.byteLength)))) {
      await waitDrain(stream)
    }
  }
}

// A buffered reader over 'message' events: read(n) resolves with exactly n
// bytes; bytes past them stay for the next read. Attach it before data arrives.
function reader (stream) {
  let buf = new Uint8Array(0)
  let ended = null
  let wake = null
  stream.addEventListener('message', (evt) => {
    const chunk = evt.data.subarray()
    const nb = new Uint8Array(buf.byteLength + chunk.byteLength)
    nb.set(buf)
    nb.set(chunk, buf.byteLength)
    buf = nb
    wake?.()
  })
  stream.addEventListener('close', (evt) => {
    ended = evt.error ?? new Error('closed')
    wake?.()
  })
  return {
    async read (n) {
      while (buf.byteLength < n) {
        if (ended) throw new Error(`${ended.message} after ${buf.byteLength} of ${n} bytes`)
        await new Promise((resolve) => { wake = resolve })
        wake = null
      }
      const out = buf.slice(0, n)
      buf = buf.subarray(n)
      return out
    },
    buffered: () => buf.byteLength
  }
}

// Reads exactly n bytes; more is an error.
async function readExactly (stream, n) {
  const r = reader(stream)
  const out = await r.read(n)
  if (r.buffered() > 0) throw new Error(`more than ${n} bytes received`)
  return out
}

const xor = (u8) => u8.map((b) => b ^ 0x5a)
const u32be = (n) => {
  const b = new Uint8Array(4)
  new DataView(b.buffer).setUint32(0, n, false)
  return b
}

// ---------------------------------------------------------------- raw protobuf (for requests
// the client library has no call for, and for malformed input)

function varint (n) {
  const out = []
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80)
    n = Math.floor(n / 128)
  }
  out.push(n)
  return Uint8Array.from(out)
}
const cat = (...parts) => {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0))
  let off = 0
  for (const p of parts) {
    out.set(p, off)
    off += p.byteLength
  }
  return out
}
const fVarint = (num, v) => cat(varint(num << 3), varint(v))
const fBytes = (num, b) => cat(varint((num << 3) | 2), varint(b.byteLength), b)
const frame = (m) => cat(varint(m.byteLength), m)

// Parses one protobuf message into {field: [values]} (varints as numbers, bytes as Uint8Array).
function pbParse (buf) {
  const out = {}
  let i = 0
  const rd = () => {
    let v = 0
    let mul = 1
    for (;;) {
      const b = buf[i++]
      if (b === undefined) throw new Error('truncated varint')
      v += (b & 0x7f) * mul
      mul *= 128
      if ((b & 0x80) === 0) return v
    }
  }
  while (i < buf.byteLength) {
    const key = rd()
    const num = Math.floor(key / 8)
    let val
    if ((key & 7) === 0) val = rd()
    else if ((key & 7) === 2) {
      const len = rd()
      val = buf.subarray(i, i + len)
      i += len
    } else throw new Error(`wire type ${key & 7}`)
    ;(out[num] ??= []).push(val)
  }
  return out
}

// A raw control connection: send frames, read frames.
class RawConn {
  constructor (ma) {
    const c = ma.getComponents()
    const unix = c.find((x) => x.name === 'unix')
    this.sock = unix
      ? net.connect({ path: unix.value })
      : net.connect({ host: c[0].value, port: Number(c[1].value) })
    this.buf = new Uint8Array(0)
    this.waiters = []
    this.ended = false
    this.sock.on('data', (d) => {
      this.buf = cat(this.buf, new Uint8Array(d))
      this.wake()
    })
    this.sock.on('close', () => {
      this.ended = true
      this.wake()
    })
    this.sock.on('error', () => {})
  }

  wake () {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }

  ready () {
    return new Promise((resolve, reject) => {
      this.sock.once('connect', resolve)
      this.sock.once('error', reject)
    })
  }

  send (bytes) {
    this.sock.write(bytes)
  }

  // The next frame's body, or null when the daemon closed the connection.
  async readFrame () {
    for (;;) {
      let len = 0
      let mul = 1
      let i = 0
      for (; i < this.buf.byteLength && i < 10; i++) {
        len += (this.buf[i] & 0x7f) * mul
        mul *= 128
        if ((this.buf[i] & 0x80) === 0) break
      }
      if (i < this.buf.byteLength && this.buf.byteLength >= i + 1 + len) {
        const body = this.buf.subarray(i + 1, i + 1 + len)
        this.buf = this.buf.subarray(i + 1 + len)
        return body
      }
      if (this.ended) return null
      await new Promise((resolve) => this.waiters.push(resolve))
    }
  }

  close () {
    this.sock.destroy()
  }
}

// Response -> {type, error, ...raw fields}
function response (body) {
  const f = pbParse(body)
  const type = f[1]?.[0]
  const err = f[2]?.[0] ? dec(pbParse(f[2][0])[1]?.[0] ?? new Uint8Array()) : null
  return { type, error: err, f }
}

// One raw request on a fresh connection; returns the parsed Response.
async function rawRequest (ma, reqBody) {
  const rc = new RawConn(ma)
  await rc.ready()
  try {
    rc.send(frame(reqBody))
    const body = await rc.readFrame()
    assert(body != null, 'the daemon closed the connection without an answer')
    return response(body)
  } finally {
    rc.close()
  }
}

// ---------------------------------------------------------------- the js node

const TEST_NS = 'test'
async function testValidator (key, value) {
  if (!(key instanceof Uint8Array) || !(value instanceof Uint8Array)) throw new Error('bytes expected')
}
function testSelector (key, records) {
  let best = 0
  for (let i = 1; i < records.length; i++) {
    if (Buffer.compare(Buffer.from(records[i]), Buffer.from(records[best])) > 0) best = i
  }
  return best
}

function echoHandler (stream) {
  stream.addEventListener('message', (evt) => {
    if (!stream.send(evt.data.subarray()) && stream.readStatus === 'readable') {
      stream.pause()
      waitDrain(stream).then(() => {
        if (stream.readStatus === 'paused') stream.resume()
      }, (err) => stream.abort(err))
    }
  })
  stream.addEventListener('end', () => {
    stream.close().catch((err) => stream.abort(err))
  }, { once: true })
}

const node = await createLibp2p({
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  connectionManager: { inboundConnectionThreshold: 1000 },
  services: {
    identify: identify(),
    ping: ping(),
    dht: kadDHT({
      clientMode: false,
      peerInfoMapper: passthroughMapper,
      validators: { [TEST_NS]: testValidator },
      selectors: { [TEST_NS]: testSelector }
    })
  }
})
await node.handle(ECHO_PROTO, echoHandler, { maxInboundStreams: 64 })
await node.start()
const L = node.peerId
const lAddrs = node.getMultiaddrs()
log('js node', L.toString(), lAddrs.map(String))

// go prints a Unix socket as /unix/PATH; @multiformats/multiaddr 13 wants the
// path as one URI-encoded value
const controlMa = (s) => s.startsWith('/unix/')
  ? multiaddr('/unix/' + encodeURIComponent(s.slice('/unix'.length)))
  : multiaddr(s)
const maA = controlMa(args['control-a'])
const A = createClient(maA)
const idA = peerIdFromString(args['id-a'])
const maB = args['control-b'] ? controlMa(args['control-b']) : null
const B = maB ? createClient(maB) : null
const idB = args['id-b'] ? peerIdFromString(args['id-b']) : null
const jsConns = new Set()
node.addEventListener('connection:open', (evt) => jsConns.add(evt.detail.remotePeer.toString()))

const inRoutingTable = (id) => {
  for (const p of node.services.dht.routingTable.kb.toIterable()) {
    if (p.peerId.equals(id)) return true
  }
  return false
}

// ---------------------------------------------------------------- checks

await check('identify: the peer ID printed at start and a TCP listen address', async () => {
  const r = await A.identify()
  assert(r.peerId.equals(idA), `identify says ${r.peerId}, start-up said ${idA}`)
  const tcpAddr = r.addrs.find((a) => a.toString().includes('/tcp/'))
  assert(tcpAddr != null, `no TCP address in ${r.addrs.map(String)}`)
  return `${r.peerId} ${r.addrs.map(String).join(' ')}`
})

if (B) {
  await check('identify over a loopback TCP control socket (daemon B)', async () => {
    const r = await B.identify()
    assert(r.peerId.equals(idB), `identify says ${r.peerId}, start-up said ${idB}`)
    return r.peerId.toString()
  })
}

const connected = await check('CONNECT to the js node by peer ID and addresses', async () => {
  await A.connect(L, lAddrs)
  await until('js sees the connection', () => jsConns.has(idA.toString()), 5000, 50)
  return lAddrs.map(String).join(' ')
})

await check('LIST_PEERS lists the js node', async () => {
  const peers = await A.listPeers()
  assert(peers.some((p) => p.equals(L)), `peers: ${peers.map(String)}`)
  return `${peers.length} peer(s)`
})

await check(`STREAM_OPEN to the js node: ${STREAM_BYTES} bytes echoed byte for byte`, async () => {
  assert(connected, 'not connected')
  const conn = await A.openStream(L, ECHO_PROTO)
  const data = randomBytes(STREAM_BYTES)
  const reading = readExactly(conn, STREAM_BYTES)
  await writeAll(conn, data)
  const got = await reading
  assert(Buffer.compare(Buffer.from(got), data) === 0, 'echoed bytes differ')
  await conn.close()
  return `${STREAM_BYTES} bytes`
})

await check('STREAM_OPEN of a protocol the js node does not speak: an ERROR response', async () => {
  let err
  try {
    const conn = await A.openStream(L, '/p2pd-test/nosuch/1.0.0')
    await conn.close()
  } catch (e) {
    err = e
  }
  assert(err != null, 'the stream opened')
  assert(/negotiation|protocol/i.test(err.message), `error: ${err.message}`)
  return err.message
})

await check(`STREAM_HANDLER: a js stream to the daemon reaches the client, ${HANDLER_BYTES} bytes each way`, async () => {
  assert(connected, 'not connected')
  let handlerSaw = null
  let handlerErr = null
  await A.registerStreamHandler(XOR_PROTO, async (conn) => {
    // the request: a 4-byte length, then that many bytes; the answer: each byte XOR 0x5a
    try {
      const r = reader(conn)
      const head = await r.read(4)
      const n = new DataView(head.buffer).getUint32(0, false)
      const body = await r.read(n)
      handlerSaw = n
      await writeAll(conn, xor(body))
      await conn.close()
    } catch (err) {
      handlerErr = err
      log('handler:', err)
      throw err
    }
  })
  const data = randomBytes(HANDLER_BYTES)
  const stream = await node.dialProtocol(idA, XOR_PROTO)
  const reading = readExactly(stream, HANDLER_BYTES)
  await writeAll(stream, cat(u32be(HANDLER_BYTES), data))
  const got = await reading.catch((err) => {
    throw handlerErr ?? err
  })
  assert(handlerSaw === HANDLER_BYTES, `the client's handler saw ${handlerSaw}`)
  assert(Buffer.compare(Buffer.from(got), Buffer.from(xor(new Uint8Array(data)))) === 0, 'answer bytes differ')
  await stream.close()
  return `${HANDLER_BYTES} bytes`
})

await check('PUBSUB: a clear ERROR (pubsub is not built)', async () => {
  let err
  try {
    await A.pubsub.getTopics()
  } catch (e) {
    err = e
  }
  assert(err != null, 'getTopics succeeded')
  assert(/pubsub/i.test(err.message), `error: ${err.message}`)
  return err.message
})

await check('PEERSTORE GET_PROTOCOLS: the js node\'s protocols from identify', async () => {
  const req = cat(fVarint(1, 9), fBytes(9, cat(fVarint(1, 1), fBytes(2, L.toMultihash().bytes))))
  const r = await rawRequest(maA, req)
  assert(r.type === 0, `response type ${r.type}: ${r.error}`)
  const ps = pbParse(r.f[8]?.[0] ?? new Uint8Array())
  const protos = (ps[2] ?? []).map(dec)
  assert(protos.includes(ECHO_PROTO) && protos.includes('/ipfs/kad/1.0.0'), `protocols: ${protos}`)
  return `${protos.length} protocols`
})

await check('CONNMANAGER: TAG_PEER and UNTAG_PEER answer OK, TRIM a clear ERROR', async () => {
  const id = fBytes(2, L.toMultihash().bytes)
  const tag = fBytes(3, enc('p2pd-test'))
  const cm = (body) => cat(fVarint(1, 6), fBytes(6, body))
  const t = await rawRequest(maA, cm(cat(fVarint(1, 0), id, tag, fVarint(4, 10))))
  assert(t.type === 0, `TAG_PEER: ${t.type} ${t.error}`)
  const u = await rawRequest(maA, cm(cat(fVarint(1, 1), id, tag)))
  assert(u.type === 0, `UNTAG_PEER: ${u.type} ${u.error}`)
  const m = await rawRequest(maA, cm(cat(fVarint(1, 0), id, tag))) // no weight
  assert(m.type === 1 && /weight/.test(m.error), `TAG_PEER without weight: ${m.type} ${m.error}`)
  const tr = await rawRequest(maA, cm(fVarint(1, 2)))
  assert(tr.type === 1 && /TRIM/.test(tr.error), `TRIM: ${tr.type} ${tr.error}`)
  return tr.error
})

await check('malformed request: an ERROR, then the same connection still answers', async () => {
  const rc = new RawConn(maA)
  await rc.ready()
  try {
    rc.send(frame(Uint8Array.from([0xff, 0xff, 0xff])))
    const r1 = response(await rc.readFrame())
    assert(r1.type === 1 && /malformed/i.test(r1.error), `first answer: ${r1.type} ${r1.error}`)
    rc.send(frame(fVarint(1, 0))) // IDENTIFY
    const r2 = response(await rc.readFrame())
    assert(r2.type === 0 && r2.f[4] != null, `second answer: ${r2.type} ${r2.error}`)
    // an unknown request type is refused by name, the connection still usable
    rc.send(frame(fVarint(1, 77)))
    const r3 = response(await rc.readFrame())
    assert(r3.type === 1 && /77/.test(r3.error), `third answer: ${r3.type} ${r3.error}`)
    return r1.error
  } finally {
    rc.close()
  }
})

await check('lost framing (a length over the bound): an ERROR, then the connection closes', async () => {
  const rc = new RawConn(maA)
  await rc.ready()
  try {
    rc.send(varint(64 * 1024 * 1024))
    const body = await rc.readFrame()
    assert(body != null, 'closed without an ERROR')
    const r = response(body)
    assert(r.type === 1 && /framing/i.test(r.error), `answer: ${r.type} ${r.error}`)
    assert((await rc.readFrame()) === null, 'the connection stayed open')
    return r.error
  } finally {
    rc.close()
  }
})

// ---- the DHT: daemon A (golemnet kad, server mode) and the js node L

const cid1 = CID.createV1(raw.code, await sha256.digest(enc(`p2pd-js-provides-${Date.now()}`)))
const cid2 = CID.createV1(raw.code, await sha256.digest(enc(`p2pd-gn-provides-${Date.now()}`)))

const tables = await check('DHT: each side has the other in its routing table', async () => {
  assert(connected, 'not connected')
  await until('the js routing table lists daemon A', () => inRoutingTable(idA), 20000)
  await until('GET_CLOSEST_PEERS of daemon A lists the js node', async () => {
    for await (const p of A.dht.getClosestPeers(L.toMultihash().bytes)) {
      if (p.id.equals(L)) return true
    }
    return false
  }, 20000, 500)
  return 'ok'
}, 45000)

await check('DHT GET_CLOSEST_PEERS: BEGIN, peer IDs, END', async () => {
  const ids = []
  for await (const p of A.dht.getClosestPeers(enc('/test/closest'))) ids.push(p.id.toString())
  assert(ids.includes(L.toString()), `peers: ${ids}`)
  return `${ids.length} peer(s)`
})

await check('DHT FIND_PEER: the js node\'s addresses', async () => {
  const r = await A.dht.findPeer(L)
  assert(r.id.equals(L), `found ${r.id}`)
  const want = lAddrs.map((a) => a.toString().replace(/\/p2p\/[^/]+$/, ''))
  assert(r.multiaddrs.some((a) => want.includes(a.toString())), `addrs: ${r.multiaddrs.map(String)}`)
  return r.multiaddrs.map(String).join(' ')
})

await check('DHT GET_PUBLIC_KEY: the js node\'s key (from its peer ID)', async () => {
  const pk = await A.dht.getPublicKey(L)
  const want = publicKeyToProtobuf(node.peerId.publicKey)
  assert(pk != null && Buffer.compare(Buffer.from(pk), Buffer.from(want)) === 0, 'key differs')
  return `${pk.byteLength} bytes`
})

await check('DHT PUT_VALUE through the daemon, js gets it', async () => {
  assert(tables, 'routing tables not ready')
  await A.dht.put(enc('/test/p2pd-from-golemnet'), enc('value-from-golemnet'))
  const local = await node.services.dht.get(enc('/test/p2pd-from-golemnet'), { signal: AbortSignal.timeout(20000) })
  let got = null
  for await (const ev of local) {
    if (ev.name === 'VALUE') got = dec(ev.value)
  }
  assert(got === 'value-from-golemnet', `js got ${got}`)
  return got
})

await check('DHT GET_VALUE through the daemon of a js put', async () => {
  assert(tables, 'routing tables not ready')
  for await (const ev of node.services.dht.put(enc('/test/p2pd-from-js'), enc('value-from-js'), { signal: AbortSignal.timeout(20000) })) {
    if (ev.name === 'QUERY_ERROR') log('js put:', errText(ev.error))
  }
  const v = await A.dht.get(enc('/test/p2pd-from-js'))
  assert(dec(v) === 'value-from-js', `daemon got ${dec(v)}`)
  return dec(v)
})

await check('DHT SEARCH_VALUE: BEGIN, the value, END', async () => {
  const req = cat(fVarint(1, 4), fBytes(5, cat(fVarint(1, 6), fBytes(4, enc('/test/p2pd-from-js')))))
  const rc = new RawConn(maA)
  await rc.ready()
  try {
    rc.send(frame(req))
    const first = response(await rc.readFrame())
    assert(first.type === 0 && first.f[5] != null, `first: ${first.type} ${first.error}`)
    assert(pbParse(first.f[5][0])[1]?.[0] === 0, 'not BEGIN')
    const val = pbParse(await rc.readFrame())
    assert(val[1]?.[0] === 1 && dec(val[3]?.[0] ?? new Uint8Array()) === 'value-from-js', 'not the VALUE')
    const end = pbParse(await rc.readFrame())
    assert(end[1]?.[0] === 2, 'not END')
    return 'BEGIN VALUE END'
  } finally {
    rc.close()
  }
})

await check('DHT FIND_PROVIDERS through the daemon of a js provide', async () => {
  assert(tables, 'routing tables not ready')
  for await (const ev of node.services.dht.provide(cid1, { signal: AbortSignal.timeout(20000) })) {
    if (ev.name === 'QUERY_ERROR') log('js provide:', errText(ev.error))
  }
  const found = await until('the daemon finds the js provider', async () => {
    for await (const p of A.dht.findProviders(cid1, 5)) {
      if (p.id.equals(L)) return p
    }
    return null
  }, 20000, 500)
  return `${found.id} ${found.multiaddrs.map(String).join(' ')}`
})

await check('DHT PROVIDE through the daemon, js finds the provider', async () => {
  assert(tables, 'routing tables not ready')
  await A.dht.provide(cid2)
  const found = await until('js finds daemon A as a provider', async () => {
    for await (const ev of node.services.dht.findProviders(cid2, { signal: AbortSignal.timeout(10000) })) {
      if (ev.name === 'PROVIDER' && ev.providers.some((p) => p.id.equals(idA))) return true
    }
    return false
  }, 20000, 500)
  return String(found)
})

if (B) {
  await check('two golemnet daemons: A puts a record, B gets it', async () => {
    const idBaddrs = (await B.identify()).addrs
    await A.connect(idB, idBaddrs)
    await until('B is among A\'s closest peers', async () => {
      for await (const p of A.dht.getClosestPeers(idB.toMultihash().bytes)) {
        if (p.id.equals(idB)) return true
      }
      return false
    }, 20000, 500)
    await A.dht.put(enc('/test/p2pd-a-to-b'), enc('value-a-to-b'))
    const v = await B.dht.get(enc('/test/p2pd-a-to-b'))
    assert(dec(v) === 'value-a-to-b', `B got ${dec(v)}`)
    return dec(v)
  }, 45000)
}

await check('DISCONNECT: the js node leaves LIST_PEERS', async () => {
  const req = cat(fVarint(1, 7), fBytes(7, fBytes(1, L.toMultihash().bytes)))
  const r = await rawRequest(maA, req)
  assert(r.type === 0, `response type ${r.type}: ${r.error}`)
  await until('the js node is gone from LIST_PEERS', async () => {
    const peers = await A.listPeers()
    return !peers.some((p) => p.equals(L))
  }, 10000, 100)
  return 'ok'
})

emit({ event: 'done', passed, failed })
await node.stop().catch(() => {})
process.exit(failed === 0 ? 0 : 1)
