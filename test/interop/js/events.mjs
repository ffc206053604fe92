// Query the JSON-lines event log written by peer.mjs (one object per line).
//
//   node events.mjs FILE 'EXPR'          exit 0 if EXPR is truthy, 1 if not
//   node events.mjs --print FILE 'EXPR'  print EXPR's value (strings raw, others as JSON)
//
// EXPR is a JavaScript expression over `ev`, the array of parsed events, and
// `find(name)` / `all(name)` (first / every event whose .event === name).
// Lines that are not JSON objects are ignored.
import { readFileSync } from 'node:fs'

const args = process.argv.slice(2)
let print = false
if (args[0] === '--print') {
  print = true
  args.shift()
}
if (args.length !== 2) {
  console.error("usage: node events.mjs [--print] FILE 'EXPR'")
  process.exit(2)
}
const [file, expr] = args
let text = ''
try {
  text = readFileSync(file, 'utf8')
} catch (err) {
  console.error(`events.mjs: ${err.message}`)
  process.exit(print ? 2 : 1)
}
const ev = []
for (const line of text.split('\n')) {
  if (!line.startsWith('{')) continue
  try {
    const o = JSON.parse(line)
    if (o != null && typeof o === 'object') ev.push(o)
  } catch {
    // not an event line
  }
}
const find = (name) => ev.find(e => e.event === name)
const all = (name) => ev.filter(e => e.event === name)
let value
try {
  // eslint-disable-next-line no-new-func
  value = new Function('ev', 'find', 'all', `return (${expr})`)(ev, find, all)
} catch (err) {
  console.error(`events.mjs: ${err.message}`)
  process.exit(2)
}
if (print) {
  if (value === undefined) process.exit(1)
  process.stdout.write((typeof value === 'string' ? value : JSON.stringify(value)) + '\n')
  process.exit(0)
}
process.exit(value ? 0 : 1)
