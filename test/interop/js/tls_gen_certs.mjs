// Generates the js-libp2p certificate vectors in this directory with
// @libp2p/tls's own generateCertificate (pinned in test/interop/js), one per key
// type js peer-id supports (Ed25519, secp256k1, RSA). Run from test/interop/js:
//   node --import ./polyfill.mjs tls_gen_certs.mjs ../../data/tls
// Output: js_<type>.txt = "unix_time_generated\ncert_der_hex\npeer_id\n".
import { writeFileSync } from 'node:fs'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { generateCertificate } from '@libp2p/tls/utils'

const dir = process.argv[2] ?? '.'
for (const [name, type, bits] of [['ed25519', 'Ed25519'], ['secp256k1', 'secp256k1'],
  ['rsa', 'RSA', 2048]]) {
  const key = await generateKeyPair(type, bits)
  const now = Math.floor(Date.now() / 1000)
  const { cert } = await generateCertificate(key)
  const b64 = cert.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '')
  const hex = Buffer.from(b64, 'base64').toString('hex')
  writeFileSync(`${dir}/js_${name}.txt`, `${now}\n${hex}\n${peerIdFromPrivateKey(key).toString()}\n`)
}
