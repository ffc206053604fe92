// js-libp2p peer for golemnet's interop tests.
//
// Run with:  node --import ./polyfill.mjs peer.mjs [flags]   (see README.md)
//
// stdout carries one JSON object per line (events); everything else goes to
// stderr.  Only loopback addresses are meant to be used with it.

import { parseArgs } from 'node:util'
import { randomBytes } from 'node:crypto'
import { setMaxListeners } from 'node:events'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { mplex } from '@libp2p/mplex'
import { identify, identifyPush } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { generateKeyPair, generateKeyPairFromSeed, privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import { readFileSync } from 'node:fs'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'

const ECHO_PROTOCOL = '/echo/1.0.0'
const PERF_PROTOCOL = '/perf/1.0.0'
const CHUNK = 64 * 1024

// ---------------------------------------------------------------- output

function emit (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

function log (...args) {
  console.error('[peer]', ...args)
}

function errText (err) {
  if (err == null) return 'unknown error'
  const name = err.name ?? 'Error'
  return `${name}: ${err.message ?? String(err)}`
}

// ---------------------------------------------------------------- flags

const USAGE = `usage: node --import ./polyfill.mjs peer.mjs [flags]
  --listen MA                 listen on MA (repeatable), e.g. /ip4/127.0.0.1/tcp/0
  --dial MA                   dial MA (a full multiaddr with /p2p/<id>)
  --muxer LIST                stream muxers to offer, comma list of yamux,mplex (default yamux,mplex)
  --key-seed N                deterministic Ed25519 key (seed bytes 0..3 = N little-endian)
  --key-file PATH             identity from a libp2p PrivateKey protobuf file (any key type)
  --key-type TYPE             a fresh identity of TYPE: Ed25519, RSA, secp256k1 or ECDSA
  --print-id                  print {"event":"peer_id"} for the key and exit
  --identify                  on dial: print the remote's identify record (from js's identify exchange)
  --identify-push             run js's identify push service (/ipfs/id/push/1.0.0: send and take pushes)
  --late-protocol ID          on dial, after the other actions: start handling ID (js then pushes its
                              new protocol list to peers that take pushes), then wait --late-wait-ms
  --late-wait-ms MS           after --late-protocol (default 3000: js debounces pushes by 1 s)
  --ping N                    on dial: N pings
  --echo-bytes N              on dial: bytes per echo stream (default 0 = no echo)
  --echo-streams K            on dial: concurrent echo streams (default 1)
  --perf-upload N             on dial: perf upload of N bytes
  --perf-download N           on dial: perf download of N bytes
  --stall-read                on dial: open an echo stream, write, never read
  --stall-bytes N             stall-read: stop writing after N bytes (default 64 MiB)
  --stall-wait-ms MS          stall-read: a write blocked this long counts as stalled (default 2000)
  --stall-hold-ms MS          stall-read: keep the stalled stream open this long after the report (default 0)
  --expect-fail               the dial is expected to fail (print dial_failed, exit 0)
  --exit-after-actions        stop and exit once the dial-side actions are done
  --timeout S                 bound for all dial-side actions (default 300)
  --stream-timeout S          bound for a server-side stream waiting to send (default 120)
  --mplex-disconnect-threshold N  js mplex: new streams/s before it drops the connection (default 1000; js default 5)
  --inbound-threshold N       js connection manager: inbound connections/s per host (default 1000; js default 5)
  --help`

function parseFlags () {
  const { values } = parseArgs({
    allowPositionals: false,
    options: {
      listen: { type: 'string', multiple: true },
      dial: { type: 'string' },
      muxer: { type: 'string', default: 'yamux,mplex' },
      'key-seed': { type: 'string' },
      'key-file': { type: 'string' },
      'key-type': { type: 'string' },
      'print-id': { type: 'boolean', default: false },
      identify: { type: 'boolean', default: false },
      'identify-push': { type: 'boolean', default: false },
      'late-protocol': { type: 'string' },
      'late-wait-ms': { type: 'string', default: '3000' },
      ping: { type: 'string', default: '0' },
      'echo-bytes': { type: 'string', default: '0' },
      'echo-streams': { type: 'string', default: '1' },
      'perf-upload': { type: 'string', default: '0' },
      'perf-download': { type: 'string', default: '0' },
      'stall-read': { type: 'boolean', default: false },
      'stall-bytes': { type: 'string', default: String(64 * 1024 * 1024) },
      'stall-wait-ms': { type: 'string', default: '2000' },
      'stall-hold-ms': { type: 'string', default: '0' },
      'expect-fail': { type: 'boolean', default: false },
      'exit-after-actions': { type: 'boolean', default: false },
      timeout: { type: 'string', default: '300' },
      'stream-timeout': { type: 'string', default: '120' },
      'mplex-disconnect-threshold': { type: 'string', default: '1000' },
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
  const muxers = values.muxer.split(',').map(s => s.trim()).filter(s => s.length > 0)
  for (const m of muxers) {
    if (m !== 'yamux' && m !== 'mplex') throw new Error(`--muxer: unknown muxer ${m}`)
  }
  if (muxers.length === 0) throw new Error('--muxer: empty list')
  const MAX_BYTES = Number.MAX_SAFE_INTEGER
  return {
    listen: values.listen ?? [],
    dial: values.dial,
    muxers,
    keySeed: values['key-seed'] == null ? null : int('key-seed', 0, 0xffffffff),
    keyFile: values['key-file'] ?? null,
    keyType: values['key-type'] ?? null,
    printId: values['print-id'],
    identify: values.identify,
    identifyPush: values['identify-push'],
    lateProtocol: values['late-protocol'],
    lateWaitMs: int('late-wait-ms', 0, 3600000),
    ping: int('ping', 0, 1000000),
    echoBytes: int('echo-bytes', 0, MAX_BYTES),
    echoStreams: int('echo-streams', 1, 1024),
    perfUpload: int('perf-upload', 0, MAX_BYTES),
    perfDownload: int('perf-download', 0, MAX_BYTES),
    stallRead: values['stall-read'],
    stallBytes: int('stall-bytes', 1, MAX_BYTES),
    stallWaitMs: int('stall-wait-ms', 1, 3600000),
    stallHoldMs: int('stall-hold-ms', 0, 3600000),
    expectFail: values['expect-fail'],
    exitAfterActions: values['exit-after-actions'],
    timeoutMs: int('timeout', 1, 86400) * 1000,
    streamTimeoutMs: int('stream-timeout', 1, 86400) * 1000,
    mplexDisconnectThreshold: int('mplex-disconnect-threshold', 1, 1000000),
    inboundThreshold: int('inbound-threshold', 1, 1000000)
  }
}

// ---------------------------------------------------------------- keys

async function privateKeyFromSeed (n) {
  const seed = new Uint8Array(32)
  new DataView(seed.buffer).setUint32(0, n, true)
  return generateKeyPairFromSeed('Ed25519', seed)
}

// ---------------------------------------------------------------- stream helpers

// Calls onChunk(Uint8Array) for every chunk the remote sends; resolves once the
// remote half-closed and everything was delivered, rejects if the stream is
// reset/aborted first.  Uses message events (not the async iterator) so that
// pause()/resume() never lose data buffered when the remote's FIN arrives.
function readAll (stream, onChunk, signal) {
  return new Promise((resolve, reject) => {
    let done = false
    const finish = (err) => {
      if (done) return
      done = true
      stream.removeEventListener('message', onMessage)
      stream.removeEventListener('end', onEnd)
      stream.removeEventListener('close', onClose)
      signal?.removeEventListener('abort', onAbort)
      if (err != null) reject(err)
      else resolve()
    }
    const onMessage = (evt) => {
      try {
        onChunk(evt.data.subarray())
      } catch (err) {
        finish(err)
      }
    }
    const onEnd = () => finish()
    const onClose = (evt) => finish(evt.error ?? (stream.readableEnded ? undefined : new Error('stream closed before end of data')))
    const onAbort = () => finish(signal.reason ?? new Error('aborted'))
    if (signal?.aborted) {
      finish(signal.reason ?? new Error('aborted'))
      return
    }
    signal?.addEventListener('abort', onAbort)
    stream.addEventListener('message', onMessage)
    stream.addEventListener('end', onEnd)
    stream.addEventListener('close', onClose)
    if (stream.readableEnded) finish()
  })
}

// Resolves once js may send again on `stream`.  Listens for the 'drain' event
// directly: in @libp2p/utils 7.4.1 stream.onDrain() keeps its first (already
// resolved) promise, so after the first drain it no longer waits at all.
function waitDrain (stream, signal) {
  if (!stream.writableNeedsDrain) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      stream.removeEventListener('drain', onDrain)
      stream.removeEventListener('close', onClose)
      signal?.removeEventListener('abort', onAbort)
    }
    const onDrain = () => { cleanup(); resolve() }
    const onClose = (evt) => { cleanup(); reject(evt.error ?? new Error('stream closed while waiting for drain')) }
    const onAbort = () => { cleanup(); reject(signal.reason ?? new Error('aborted')) }
    if (signal?.aborted) {
      reject(signal.reason ?? new Error('aborted'))
      return
    }
    stream.addEventListener('drain', onDrain)
    stream.addEventListener('close', onClose)
    signal?.addEventListener('abort', onAbort)
  })
}

// Writes `total` bytes taken from `source(offset, len)` in CHUNK pieces,
// waiting for 'drain' whenever js reports its send buffer full.
async function writeBytes (stream, total, source, signal) {
  let off = 0
  while (off < total) {
    const len = Math.min(CHUNK, total - off)
    const buf = source(off, len)
    off += len
    if (!stream.send(buf)) {
      await waitDrain(stream, signal)
    }
  }
}

function u64be (n) {
  const b = new Uint8Array(8)
  new DataView(b.buffer).setBigUint64(0, BigInt(n), false)
  return b
}

const ZERO_CHUNK = new Uint8Array(CHUNK)
const zeroSource = (off, len) => len === CHUNK ? ZERO_CHUNK : ZERO_CHUNK.subarray(0, len)

// ---------------------------------------------------------------- server handlers

// /echo/1.0.0: send back every byte until the remote half-closes, then close.
// When our send buffer is full we pause reading (for yamux this withholds
// window updates, so the remote is flow-controlled instead of us buffering).
function makeEchoHandler (cfg) {
  return (stream, connection) => {
    let total = 0
    let waiting = false
    const onMessage = (evt) => {
      const data = evt.data
      total += data.byteLength
      let ok
      try {
        ok = stream.send(data)
      } catch (err) {
        log('echo: send failed', errText(err))
        stream.abort(err)
        return
      }
      if (!ok && !waiting && stream.readStatus === 'readable') {
        waiting = true
        stream.pause()
        waitDrain(stream, AbortSignal.timeout(cfg.streamTimeoutMs)).then(() => {
          waiting = false
          if (stream.readStatus === 'paused') stream.resume()
        }, (err) => {
          waiting = false
          log('echo: drain failed', errText(err))
          stream.abort(err)
        })
      }
    }
    const onEnd = () => {
      stream.removeEventListener('message', onMessage)
      if (stream.status !== 'open') return
      log(`echo: ${total} bytes from ${connection.remotePeer}, closing`)
      stream.close({ signal: AbortSignal.timeout(cfg.streamTimeoutMs) }).catch((err) => {
        log('echo: close failed', errText(err))
        stream.abort(err)
      })
    }
    stream.addEventListener('message', onMessage)
    stream.addEventListener('end', onEnd, { once: true })
    stream.addEventListener('close', (evt) => {
      if (evt.error != null) log('echo: stream closed with error', errText(evt.error))
    }, { once: true })
    if (stream.readableEnded) onEnd()
  }
}

// /perf/1.0.0 (libp2p perf spec): read the 8-byte big-endian number of bytes
// to send back, read (and discard) the upload until the remote half-closes,
// then send that many bytes and close.
function makePerfHandler (cfg) {
  return async (stream, connection) => {
    const signal = AbortSignal.timeout(cfg.timeoutMs)
    setMaxListeners(Infinity, signal)
    const header = new Uint8Array(8)
    let headerLen = 0
    let uploaded = 0
    try {
      await readAll(stream, (chunk) => {
        let c = chunk
        if (headerLen < 8) {
          const take = Math.min(8 - headerLen, c.byteLength)
          header.set(c.subarray(0, take), headerLen)
          headerLen += take
          c = c.subarray(take)
        }
        uploaded += c.byteLength
      }, signal)
      if (headerLen < 8) throw new Error(`perf: stream ended after ${headerLen} header bytes`)
      const want = new DataView(header.buffer).getBigUint64(0, false)
      if (want > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`perf: download size ${want} too large for this peer`)
      const n = Number(want)
      await writeBytes(stream, n, zeroSource, signal)
      await stream.close({ signal })
      log(`perf: ${connection.remotePeer} uploaded ${uploaded}, sent ${n}`)
    } catch (err) {
      log('perf: failed', errText(err))
      stream.abort(err)
    }
  }
}

// ---------------------------------------------------------------- client actions

// js runs identify by itself on every new connection (and accepts only one
// identify stream at a time per connection), so report that exchange's result
// instead of opening a second identify stream.
function identifyRecord (r) {
  return {
    peer_id: r.peerId.toString(),
    protocols: [...r.protocols].sort(),
    listen_addrs: r.listenAddrs.map(a => a.toString()),
    observed_addr: r.observedAddr?.toString() ?? null,
    agent_version: r.agentVersion ?? null,
    protocol_version: r.protocolVersion ?? null,
    signed_peer_record: r.signedPeerRecord != null
  }
}

const identified = new Map() // peer id string -> identify record
const identifyWaiters = new Map() // peer id string -> [resolve]

function onPeerIdentify (r) {
  const rec = identifyRecord(r)
  identified.set(rec.peer_id, rec)
  emit({ event: 'peer_identify', ...rec })
  const ws = identifyWaiters.get(rec.peer_id) ?? []
  identifyWaiters.delete(rec.peer_id)
  for (const w of ws) w(rec)
}

function waitIdentify (peerId, signal) {
  const key = peerId.toString()
  if (identified.has(key)) return Promise.resolve(identified.get(key))
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('identify: no result from the remote within 15 s')), 15000)
    const onAbort = () => { clearTimeout(t); reject(signal.reason ?? new Error('aborted')) }
    signal.addEventListener('abort', onAbort, { once: true })
    const ws = identifyWaiters.get(key) ?? []
    ws.push((rec) => { clearTimeout(t); signal.removeEventListener('abort', onAbort); resolve(rec) })
    identifyWaiters.set(key, ws)
  })
}

async function doIdentify (conn, signal) {
  const rec = await waitIdentify(conn.remotePeer, signal)
  emit({ event: 'identify', ...rec })
}

async function doPing (node, conn, count, signal) {
  for (let i = 0; i < count; i++) {
    const t0 = process.hrtime.bigint()
    await node.services.ping.ping(conn.remotePeer, { signal })
    const rtt = Number(process.hrtime.bigint() - t0) / 1e6
    emit({ event: 'ping', peer_id: conn.remotePeer.toString(), seq: i, rtt_ms: Math.round(rtt * 1000) / 1000 })
  }
}

async function echoOne (conn, bytes, signal) {
  const stream = await conn.newStream(ECHO_PROTOCOL, { signal })
  const data = randomBytes(bytes)
  const got = new Uint8Array(bytes)
  let gotLen = 0
  let overflow = false
  const reading = readAll(stream, (chunk) => {
    if (gotLen + chunk.byteLength > bytes) {
      overflow = true
      return
    }
    got.set(chunk, gotLen)
    gotLen += chunk.byteLength
  }, signal)
  try {
    await writeBytes(stream, bytes, (off, len) => data.subarray(off, off + len), signal)
    await stream.close({ signal })
    await reading
  } catch (err) {
    stream.abort(err)
    reading.catch(() => {})
    throw err
  }
  if (overflow) throw new Error('echo: received more bytes than sent')
  if (gotLen !== bytes) throw new Error(`echo: received ${gotLen} of ${bytes} bytes`)
  if (Buffer.compare(Buffer.from(got.buffer, got.byteOffset, gotLen), data) !== 0) throw new Error('echo: data mismatch')
}

async function doEcho (conn, bytes, streams, signal) {
  const t0 = process.hrtime.bigint()
  const results = await Promise.allSettled(Array.from({ length: streams }, () => echoOne(conn, bytes, signal)))
  const secs = Number(process.hrtime.bigint() - t0) / 1e9
  const failed = results.filter(r => r.status === 'rejected')
  if (failed.length > 0) {
    emit({ event: 'echo', ok: false, bytes, streams, failed: failed.length, error: errText(failed[0].reason) })
    throw failed[0].reason
  }
  emit({ event: 'echo', ok: true, bytes, streams, seconds: round6(secs) })
}

// One perf stream: ask for `download` bytes, upload `upload` bytes, half-close,
// read until the server closes.  Time is from stream open to end of stream.
async function perfRun (conn, upload, download, signal) {
  const t0 = process.hrtime.bigint()
  const stream = await conn.newStream(PERF_PROTOCOL, { signal })
  let got = 0
  const reading = readAll(stream, (chunk) => { got += chunk.byteLength }, signal)
  try {
    stream.send(u64be(download))
    await writeBytes(stream, upload, zeroSource, signal)
    await stream.close({ signal })
    await reading
  } catch (err) {
    stream.abort(err)
    reading.catch(() => {})
    throw err
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9
  if (got !== download) throw new Error(`perf: downloaded ${got} of ${download} bytes`)
  return secs
}

function round6 (x) {
  return Math.round(x * 1e6) / 1e6
}

async function doPerf (conn, upload, download, signal) {
  // Separate upload and download runs, as in the perf spec's
  // "single connection throughput" benchmark.
  const out = { event: 'perf', upload_bytes: upload, upload_s: 0, download_bytes: download, download_s: 0 }
  if (upload > 0) out.upload_s = round6(await perfRun(conn, upload, 0, signal))
  if (download > 0) out.download_s = round6(await perfRun(conn, 0, download, signal))
  const mbit = (b, s) => s > 0 ? Math.round(b * 8 / s / 1e4) / 100 : null
  out.upload_mbit_s = mbit(upload, out.upload_s)
  out.download_mbit_s = mbit(download, out.download_s)
  emit(out)
}

// Open an echo stream and write without ever reading.  pause() makes js stop
// granting receive window (yamux), so a well-behaved remote echo server gets
// blocked sending to us and must stop reading (no window for us either).
// mplex has no flow control: js then buffers up to maxReadBufferLength
// (4 MiB) of unread data and resets the stream itself, or the remote resets.
//
// Reports {"event":"stall"} once writing stopped progressing (blocked for
// --stall-wait-ms), the stream was reset, or --stall-bytes were written (then
// it waits up to --stall-wait-ms more for a reset), keeps the stream stalled
// for --stall-hold-ms, then aborts it.
async function doStallRead (conn, cfg, signal) {
  const stream = await conn.newStream(ECHO_PROTOCOL, { signal })
  let closeInfo = null
  stream.addEventListener('close', (evt) => {
    closeInfo = { error: evt.error != null ? errText(evt.error) : null, local: evt.local === true }
  }, { once: true })
  stream.pause()
  const chunk = randomBytes(CHUNK)
  let written = 0
  let blocked = false
  const t0 = process.hrtime.bigint()
  const maxIter = Math.ceil(cfg.stallBytes / CHUNK) + 1
  try {
    for (let i = 0; written < cfg.stallBytes && i < maxIter && closeInfo == null; i++) {
      const len = Math.min(CHUNK, cfg.stallBytes - written)
      const ok = stream.send(len === CHUNK ? chunk : chunk.subarray(0, len))
      written += len
      if (!ok) {
        const waitSignal = AbortSignal.any([signal, AbortSignal.timeout(cfg.stallWaitMs)])
        try {
          await waitDrain(stream, waitSignal)
        } catch (err) {
          if (signal.aborted) throw err
          if (closeInfo == null && stream.status === 'open') blocked = true
          break
        }
      }
    }
  } catch (err) {
    if (signal.aborted) throw err
    if (closeInfo == null) closeInfo = { error: errText(err), local: null }
  }
  if (!blocked && closeInfo == null) {
    // everything was accepted without backpressure: give a reset time to arrive
    await new Promise((resolve) => {
      const t = setTimeout(done, cfg.stallWaitMs)
      function done () {
        clearTimeout(t)
        stream.removeEventListener('close', done)
        signal.removeEventListener('abort', done)
        resolve()
      }
      stream.addEventListener('close', done)
      signal.addEventListener('abort', done)
    })
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9
  const unsent = stream.writeBufferLength
  emit({
    event: 'stall',
    written,
    unsent,
    accepted: written - unsent,
    read_buffered: stream.readBufferLength,
    blocked,
    reset: closeInfo?.error ?? null,
    reset_by: closeInfo == null ? null : (closeInfo.local === true ? 'local' : closeInfo.local === false ? 'remote' : null),
    stream_status: stream.status,
    seconds: round6(secs)
  })
  if (cfg.stallHoldMs > 0 && stream.status === 'open') {
    await new Promise((resolve) => {
      const t = setTimeout(resolve, cfg.stallHoldMs)
      signal.addEventListener('abort', () => { clearTimeout(t); resolve() }, { once: true })
    })
  }
  stream.abort(new Error('stall-read finished'))
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

  let privateKey
  if (cfg.keyFile != null) {
    privateKey = privateKeyFromProtobuf(readFileSync(cfg.keyFile))
  } else if (cfg.keyType != null) {
    privateKey = await generateKeyPair(cfg.keyType)
  } else if (cfg.keySeed != null) {
    privateKey = await privateKeyFromSeed(cfg.keySeed)
  }
  if (cfg.printId) {
    if (privateKey == null) {
      console.error('--print-id needs --key-seed or --key-file')
      process.exit(2)
    }
    emit({ event: 'peer_id', key_seed: cfg.keySeed, key_type: privateKey.type, peer_id: peerIdFromPrivateKey(privateKey).toString() })
    process.exit(0)
  }
  if (cfg.listen.length === 0 && cfg.dial == null) {
    console.error('need --listen and/or --dial')
    console.error(USAGE)
    process.exit(2)
  }

  const streamMuxers = cfg.muxers.map(m => m === 'yamux'
    ? yamux()
    : mplex({ disconnectThreshold: cfg.mplexDisconnectThreshold }))

  const node = await createLibp2p({
    ...(privateKey != null ? { privateKey } : {}),
    addresses: { listen: cfg.listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers,
    connectionManager: {
      inboundConnectionThreshold: cfg.inboundThreshold
    },
    services: {
      identify: identify(),
      ...(cfg.identifyPush ? { identifyPush: identifyPush() } : {}),
      ping: ping()
    },
    start: false
  })

  node.addEventListener('connection:open', (evt) => {
    const c = evt.detail
    emit({
      event: 'connection_open',
      peer_id: c.remotePeer.toString(),
      remote_addr: c.remoteAddr.toString(),
      direction: c.direction,
      muxer: c.multiplexer ?? null,
      encryption: c.encryption ?? null
    })
  })
  node.addEventListener('connection:close', (evt) => {
    const c = evt.detail
    emit({
      event: 'connection_close',
      peer_id: c.remotePeer.toString(),
      remote_addr: c.remoteAddr.toString(),
      direction: c.direction,
      muxer: c.multiplexer ?? null,
      encryption: c.encryption ?? null
    })
  })
  // identify that js runs by itself on every new connection
  node.addEventListener('peer:identify', (evt) => { onPeerIdentify(evt.detail) })

  await node.handle(ECHO_PROTOCOL, makeEchoHandler(cfg), { maxInboundStreams: 1024, maxOutboundStreams: 1024 })
  await node.handle(PERF_PROTOCOL, makePerfHandler(cfg), { maxInboundStreams: 64, maxOutboundStreams: 64 })

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

  if (cfg.listen.length > 0) {
    emit({
      event: 'listening',
      peer_id: node.peerId.toString(),
      addrs: node.getMultiaddrs().map(a => a.toString()),
      muxers: cfg.muxers
    })
  }

  if (cfg.dial == null) return

  const signal = AbortSignal.timeout(cfg.timeoutMs)
  setMaxListeners(Infinity, signal)
  let conn
  try {
    conn = await node.dial(multiaddr(cfg.dial), { signal })
  } catch (err) {
    if (cfg.expectFail) {
      emit({ event: 'dial_failed', error: errText(err) })
      await shutdown(0, 'dial failed as expected')
      return
    }
    emit({ event: 'error', action: 'dial', error: errText(err) })
    await shutdown(1, 'dial failed')
    return
  }
  emit({
    event: 'connected',
    peer_id: conn.remotePeer.toString(),
    remote_addr: conn.remoteAddr.toString(),
    muxer: conn.multiplexer ?? null,
    encryption: conn.encryption ?? null
  })
  if (cfg.expectFail) {
    emit({ event: 'error', action: 'dial', error: 'dial succeeded but was expected to fail' })
    await shutdown(1, 'dial unexpectedly succeeded')
    return
  }

  let action = 'none'
  try {
    if (cfg.identify) { action = 'identify'; await doIdentify(conn, signal) }
    if (cfg.ping > 0) { action = 'ping'; await doPing(node, conn, cfg.ping, signal) }
    if (cfg.echoBytes > 0) { action = 'echo'; await doEcho(conn, cfg.echoBytes, cfg.echoStreams, signal) }
    if (cfg.perfUpload > 0 || cfg.perfDownload > 0) { action = 'perf'; await doPerf(conn, cfg.perfUpload, cfg.perfDownload, signal) }
    if (cfg.stallRead) { action = 'stall-read'; await doStallRead(conn, cfg, signal) }
    if (cfg.lateProtocol != null) {
      action = 'late-protocol'
      await node.handle(cfg.lateProtocol, (stream) => { stream.abort(new Error('not served')) })
      emit({ event: 'late_protocol', protocol: cfg.lateProtocol })
      await new Promise((resolve) => setTimeout(resolve, cfg.lateWaitMs))
    }
  } catch (err) {
    emit({ event: 'error', action, error: errText(signal.aborted ? (signal.reason ?? err) : err) })
    await shutdown(1, `${action} failed`)
    return
  }
  emit({ event: 'actions_done' })
  if (cfg.exitAfterActions) await shutdown(0, 'actions done')
}

main().catch((err) => {
  log('fatal', err?.stack ?? errText(err))
  emit({ event: 'error', action: 'main', error: errText(err) })
  process.exit(1)
})
