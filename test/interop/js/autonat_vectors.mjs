// Prints the AutoNAT v1 known-answer vectors used by
// test/unit/autonat/autonat_msg_test.c: each message encoded by
// @libp2p/autonat's own protobuf codec (dist/src/pb, protons) and framed
// with an unsigned-varint length prefix as its pbStream writes it.
// Run: node autonat_vectors.mjs   (after npm ci)
import { Message } from './node_modules/@libp2p/autonat/dist/src/pb/index.js'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import * as varint from 'uint8-varint'

const hex = (b) => Buffer.from(b).toString('hex')
const frame = (m) => {
  const body = Message.encode(m)
  return hex(varint.encode(body.length)) + hex(body)
}

// the Ed25519 key of seed 32 x 0x07 (gn_identity_from_seed in the C test)
const key = await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(7))
const pid = peerIdFromPrivateKey(key)
console.log('peer', pid.toString())
console.log('dial', frame({
  type: Message.MessageType.DIAL,
  dial: { peer: { id: pid.toMultihash().bytes, addrs: [multiaddr('/ip4/127.0.0.1/tcp/4001').bytes, multiaddr('/ip6/::1/tcp/4002').bytes] } }
}))
console.log('ok', frame({
  type: Message.MessageType.DIAL_RESPONSE,
  dialResponse: { status: Message.ResponseStatus.OK, addr: multiaddr('/ip4/1.2.3.4/tcp/4001').bytes }
}))
console.log('dial_error', frame({
  type: Message.MessageType.DIAL_RESPONSE,
  dialResponse: { status: Message.ResponseStatus.E_DIAL_ERROR, statusText: 'dial failed' }
}))
console.log('refused', frame({
  type: Message.MessageType.DIAL_RESPONSE,
  dialResponse: { status: Message.ResponseStatus.E_DIAL_REFUSED, statusText: 'too many dials' }
}))
console.log('bad_request', frame({
  type: Message.MessageType.DIAL_RESPONSE,
  dialResponse: { status: Message.ResponseStatus.E_BAD_REQUEST }
}))
console.log('internal', frame({
  type: Message.MessageType.DIAL_RESPONSE,
  dialResponse: { status: Message.ResponseStatus.E_INTERNAL_ERROR }
}))
