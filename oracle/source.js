// Chainlink Functions source (runs on each DON node, in Deno): fetch one interval attestation
// from the meter server's public API, check its shape, return it in the 192-byte form that
// contracts/src/FunctionsConsumer.sol decodes. args: [baseUrl, meterId, seq].
//
// Nothing here is trusted by the chain: the AttestationVerifier checks the meter's device
// signature. These checks make a wrong answer fail early, with a reason the requester can act
// on, instead of costing a verifier revert. A thrown Error becomes the request's error (at most
// 256 bytes on-chain); the DON returns at most 256 bytes of result.
const [baseUrl, meterId, seqArg] = args
if (!/^https?:\/\/[^\s]+$/.test(baseUrl || "")) throw Error(`bad baseUrl ${baseUrl}`)
if (!/^\d{1,19}$/.test(seqArg || "")) throw Error(`bad seq ${seqArg}`)
const url = `${baseUrl.replace(/\/+$/, "")}/api/v1/meters/${encodeURIComponent(meterId)}/attestations/${seqArg}`
const headers = secrets && secrets.apiKey ? { Authorization: `Bearer ${secrets.apiKey}` } : undefined
const res = await Functions.makeHttpRequest({ url, headers, timeout: 8000, responseType: "text" })
if (res.error) {
  let detail = res.message || ""
  try {
    detail = (await res.response.text()).slice(0, 120)
  } catch (_) { /* no body */ }
  throw Error(`server: ${res.code ? "HTTP " + res.code : "unreachable"} ${detail}`.trim())
}
let body
try {
  body = JSON.parse(res.data)
} catch (_) {
  throw Error("server: answer is not JSON")
}
const a = body && body.attestation
if (!a || typeof a !== "object") throw Error("shape: no attestation object")
if (a.meterId !== meterId) throw Error(`shape: meterId ${String(a.meterId).slice(0, 40)} is not ${meterId}`)

// JSON numbers are doubles: a value past 2^53 cannot be read exactly, so it is refused
const uint = (name, bits) => {
  const v = a[name]
  if (!Number.isSafeInteger(v) || v < 0) throw Error(`shape: ${name} is not an exact unsigned integer`)
  const b = BigInt(v)
  if (b >> BigInt(bits) !== 0n) throw Error(`shape: ${name} exceeds uint${bits}`)
  return b
}
const hex = (name, digits) => {
  const v = a[name]
  // (no "$" before a quote or backtick anywhere: the toolkit's simulator inserts this source
  // with String.replace, which would expand such pairs)
  if (typeof v !== "string" || !new RegExp("^0x[0-9a-f]{" + digits + "}" + "$").test(v)) {
    throw Error(`shape: ${name} is not 0x + ${digits} lowercase hex digits`)
  }
  return v.slice(2)
}
const seq = uint("seq", 64)
if (seq !== BigInt(seqArg)) throw Error(`shape: seq ${seq} is not the requested ${seqArg}`)
const start = uint("intervalStart", 64)
const end = uint("intervalEnd", 64)
if (end <= start) throw Error("shape: intervalEnd is not after intervalStart")
const exportMj = uint("exportMj", 64)
const importMj = uint("importMj", 64)
const first = uint("firstReadingSeq", 64)
const count = uint("readingCount", 32)
if (count < 1n) throw Error("shape: readingCount is 0")
const root = hex("readingsRoot", 64)
const sig = hex("signature", 130)
const v = parseInt(sig.slice(128), 16)
if (v !== 27 && v !== 28) throw Error(`shape: signature v is ${v}, not 27 or 28`)

const w0 = (seq << 192n) | (start << 128n) | (end << 64n) | exportMj
const w1 = (importMj << 96n) | (first << 32n) | count
const word = (b) => b.toString(16).padStart(64, "0")
const out = word(w0) + word(w1) + root + sig.slice(0, 64) + sig.slice(64, 128) + word(BigInt(v))
return new Uint8Array(out.match(/../g).map((h) => parseInt(h, 16)))
