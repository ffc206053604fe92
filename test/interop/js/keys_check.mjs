// js-libp2p's side of the key interop test (keys_interop.sh), with the
// harness's pinned @libp2p/crypto:
//   node keys_check.mjs sign KEYFILE MESSAGE
//       prints "<PublicKey protobuf hex> <signature hex> <key type>"
//   node keys_check.mjs verify PUBKEY_HEX MESSAGE SIGNATURE_HEX
//       exit 0 when it verifies, 1 when not (2 when js throws)
//   node keys_check.mjs genkey TYPE FILE
//       writes a fresh PrivateKey protobuf of TYPE (Ed25519, RSA, secp256k1, ECDSA)
//   node keys_check.mjs record KEYFILE
//       prints the hex of a signed peer record envelope js seals with the key
//       (@libp2p/peer-record, what js-libp2p's identify sends)
import { readFileSync, writeFileSync } from 'node:fs'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { PeerRecord, RecordEnvelope } from '@libp2p/peer-record'
import {
  generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf,
  publicKeyFromProtobuf, publicKeyToProtobuf
} from '@libp2p/crypto/keys'

const hex = b => Buffer.from(b).toString('hex')
const [cmd, ...args] = process.argv.slice(2)
try {
  if (cmd === 'sign' && args.length === 2) {
    const key = privateKeyFromProtobuf(readFileSync(args[0]))
    const sig = await key.sign(new TextEncoder().encode(args[1]))
    console.log(`${hex(publicKeyToProtobuf(key.publicKey))} ${hex(sig)} ${key.type}`)
  } else if (cmd === 'verify' && args.length === 3) {
    const pub = publicKeyFromProtobuf(Buffer.from(args[0], 'hex'))
    const ok = await pub.verify(new TextEncoder().encode(args[1]), Buffer.from(args[2], 'hex'))
    console.log(ok ? 'ok' : 'bad signature')
    process.exit(ok ? 0 : 1)
  } else if (cmd === 'record' && args.length === 1) {
    const key = privateKeyFromProtobuf(readFileSync(args[0]))
    const record = new PeerRecord({
      peerId: peerIdFromPrivateKey(key),
      multiaddrs: [multiaddr('/ip4/127.0.0.1/tcp/4001')]
    })
    console.log(hex((await RecordEnvelope.seal(record, key)).marshal()))
  } else if (cmd === 'genkey' && args.length === 2) {
    const key = await generateKeyPair(args[0])
    writeFileSync(args[1], privateKeyToProtobuf(key), { mode: 0o600 })
  } else {
    console.error('usage: keys_check.mjs sign KEYFILE MSG | verify PUBHEX MSG SIGHEX | genkey TYPE FILE')
    process.exit(2)
  }
} catch (err) {
  console.error(`${err.name}: ${err.message}`)
  process.exit(2)
}
