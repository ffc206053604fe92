// Prints "<file> <peer id> <key type>" for each libp2p PrivateKey protobuf
// file named on the command line, as js-libp2p derives it (@libp2p/crypto
// privateKeyFromProtobuf + @libp2p/peer-id peerIdFromPrivateKey). Used by
// keys_interop.sh to check golemnet's peer IDs against js-libp2p's.
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'

for (const file of process.argv.slice(2)) {
  const key = privateKeyFromProtobuf(readFileSync(file))
  console.log(`${basename(file)} ${peerIdFromPrivateKey(key).toString()} ${key.type}`)
}
