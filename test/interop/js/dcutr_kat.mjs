// Prints the known-answer frames of test/unit/dcutr/dcutr_msg_test.c:
// js-libp2p's @libp2p/dcutr HolePunch encoder (its generated protons codec)
// and the unsigned-varint length prefix js-libp2p writes before it
// (uint8-varint). Run: npm ci && node dcutr_kat.mjs
import { HolePunch } from './node_modules/@libp2p/dcutr/dist/src/pb/message.js'
import { multiaddr } from '@multiformats/multiaddr'
import * as varint from 'uint8-varint'

const frame = (msg) => {
  const body = HolePunch.encode(msg)
  const pre = varint.encode(body.length)
  return Buffer.concat([Buffer.from(pre), Buffer.from(body)]).toString('hex')
}
const ma = (s) => multiaddr(s).bytes

const cases = {
  sync: { type: HolePunch.Type.SYNC, observedAddresses: [] },
  connect_empty: { type: HolePunch.Type.CONNECT, observedAddresses: [] },
  connect_two: {
    type: HolePunch.Type.CONNECT,
    observedAddresses: [ma('/ip4/1.2.3.4/tcp/4001'), ma('/ip6/2001:db8::1/tcp/4002')]
  },
  // 16 addresses of 240 bytes each: the body passes 127 bytes (2-byte prefix)
  connect_big: {
    type: HolePunch.Type.CONNECT,
    observedAddresses: Array.from({ length: 16 }, (_, i) => ma(`/dns4/${'h'.repeat(230)}${i.toString(16)}/tcp/${1000 + i}`))
  }
}
for (const [name, msg] of Object.entries(cases)) {
  console.log(name, frame(msg))
}
