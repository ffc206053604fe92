// A libutp peer (npm utp-native 2.5.3, libutp with N-API; the prebuilt
// linux-x64 binary inside the package) for test/interop/utp/utp_native_interop.sh.
//
//   node peer.cjs serve SECS
//       echo server on 127.0.0.1 (port chosen by the system); prints
//       "LISTEN <port>" and echoes every connection's bytes back; one JSON
//       line per connection when it ends: {"echoed": n}. Exits after SECS.
//   node peer.cjs dial PORT FILE SECS
//       connects to 127.0.0.1:PORT, sends FILE's bytes, reads as many back
//       and compares them; prints {"sent": n, "received": n, "equal": bool}.
//       Exit 0 only if every byte came back equal, 1 otherwise (or after
//       SECS).
'use strict'
const utp = require('utp-native')
const fs = require('fs')

const [mode, ...args] = process.argv.slice(2)
if (mode === 'serve') {
  const secs = Number(args[0])
  const server = utp.createServer(c => {
    let n = 0
    c.on('data', d => { n += d.length; c.write(d) })
    c.on('end', () => { console.log(JSON.stringify({ echoed: n })); c.end() })
    c.on('error', e => console.log(JSON.stringify({ error: String(e) })))
  })
  server.listen(0, '127.0.0.1', () => console.log('LISTEN ' + server.address().port))
  setTimeout(() => process.exit(0), secs * 1000)
} else if (mode === 'dial') {
  const [port, file, secs] = [Number(args[0]), args[1], Number(args[2])]
  const data = fs.readFileSync(file)
  const chunks = []
  let got = 0
  const timer = setTimeout(() => {
    console.log(JSON.stringify({ sent: data.length, received: got, equal: false, timeout: true }))
    process.exit(1)
  }, secs * 1000)
  const c = utp.connect(port, '127.0.0.1')
  c.on('error', e => { console.log(JSON.stringify({ error: String(e) })); process.exit(1) })
  c.on('data', d => {
    chunks.push(d)
    got += d.length
    if (got >= data.length) {
      const equal = Buffer.concat(chunks).equals(data)
      console.log(JSON.stringify({ sent: data.length, received: got, equal }))
      clearTimeout(timer)
      c.end()
      setTimeout(() => process.exit(equal ? 0 : 1), 300)
    }
  })
  c.write(data)
} else {
  console.error('usage: peer.cjs serve SECS | dial PORT FILE SECS')
  process.exit(2)
}
