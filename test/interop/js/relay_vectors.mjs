// Prints the known-answer vectors of test/unit/relay/relay_msg_test.c,
// produced by js-libp2p's own encoders (@libp2p/circuit-relay-v2's protons
// messages and ReservationVoucherRecord, @libp2p/peer-record's
// RecordEnvelope). Run: cd test/interop/js && npm ci && node relay_vectors.mjs
import { generateKeyPairFromSeed, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { RecordEnvelope } from '@libp2p/peer-record'
import { multiaddr } from '@multiformats/multiaddr'
import { HopMessage, StopMessage, Status } from './node_modules/@libp2p/circuit-relay-v2/dist/src/pb/index.js'
import { ReservationVoucherRecord } from './node_modules/@libp2p/circuit-relay-v2/dist/src/server/reservation-voucher.js'

const hex = (b) => Buffer.from(b).toString('hex')
const seed = (v) => new Uint8Array(32).fill(v)
const relayKey = await generateKeyPairFromSeed('Ed25519', seed(1))
const peerKey = await generateKeyPairFromSeed('Ed25519', seed(2))
const relay = peerIdFromPrivateKey(relayKey)
const peer = peerIdFromPrivateKey(peerKey)
const expiration = 1767225600n // 2026-01-01T00:00:00Z

const voucher = await RecordEnvelope.seal(new ReservationVoucherRecord({
  relay, peer, expiration: Number(expiration)
}), relayKey)
const vbytes = voucher.marshal()

const out = {
  relay: relay.toString(),
  relay_id: hex(relay.toMultihash().bytes),
  peer: peer.toString(),
  peer_id: hex(peer.toMultihash().bytes),
  hop_reserve: hex(HopMessage.encode({ type: HopMessage.Type.RESERVE })),
  hop_connect: hex(HopMessage.encode({
    type: HopMessage.Type.CONNECT,
    peer: { id: peer.toMultihash().bytes, addrs: [multiaddr('/ip4/127.0.0.1/tcp/4001').bytes] }
  })),
  hop_status_ok: hex(HopMessage.encode({
    type: HopMessage.Type.STATUS,
    status: Status.OK,
    reservation: {
      expire: expiration,
      addrs: [multiaddr(`/ip4/1.2.3.4/tcp/4001/p2p/${relay}`).bytes],
      // as the relay server (dist/src/server/index.js) builds it
      voucher: {
        publicKey: publicKeyToProtobuf(voucher.publicKey),
        payloadType: voucher.payloadType,
        payload: { relay: relay.toMultihash().bytes, peer: peer.toMultihash().bytes, expiration },
        signature: voucher.signature
      }
    },
    limit: { duration: 120, data: 131072n }
  })),
  hop_status_refused: hex(HopMessage.encode({ type: HopMessage.Type.STATUS, status: Status.NO_RESERVATION })),
  stop_connect: hex(StopMessage.encode({
    type: StopMessage.Type.CONNECT,
    peer: { id: peer.toMultihash().bytes, addrs: [] },
    limit: { duration: 120, data: 131072n }
  })),
  stop_status_ok: hex(StopMessage.encode({ type: StopMessage.Type.STATUS, status: Status.OK })),
  voucher: hex(vbytes)
}
for (const [k, v] of Object.entries(out)) console.log(`${k} ${v}`)
