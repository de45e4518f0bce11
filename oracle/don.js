#!/usr/bin/env node
// Local Chainlink Functions DON for a dev chain (anvil), on @chainlink/functions-toolkit:
//
//   node oracle/don.js deploy --rpc URL --key HEX [--juels N]   -> JSON on stdout
//   node oracle/don.js add-consumer --rpc URL --key HEX --router A --link A --sub N --consumer A
//   node oracle/don.js run --rpc URL --key HEX --coordinator A --state FILE [--nodes 4]
//
// `deploy` is the toolkit's deployFunctionsOracle (LINK, price feeds, FunctionsRouter, the
// FunctionsCoordinatorTestHelper, allow list) plus a funded subscription. `run` is the DON:
// it reads OracleRequest events, runs the request's JavaScript with the toolkit's
// simulateScript (Deno) once per simulated node, aggregates as the toolkit's local testnet
// does (byte-wise median of the results, else the most frequent error) and reports through
// the test helper's callReport.
//
// DEV CHAINS ONLY: callReport skips the DON's OCR signatures; whoever can call it can answer any
// request with anything. A real DON signs every report with a quorum of its nodes' keys.
//
// The loop keeps the first block it has not finished in --state, and a request counts as done
// only when the coordinator logged its OracleResponse; so a DON stopped mid-request (an outage)
// answers everything that waited when it comes back, and never answers a request twice.
"use strict"
const fs = require("fs")
const path = require("path")
const { ethers } = require("ethers")
const cbor = require("cbor")
const toolkit = require("@chainlink/functions-toolkit")
const sources = require("@chainlink/functions-toolkit/dist/v1_contract_sources")
const sim = require("@chainlink/functions-toolkit/dist/simulationConfig")

function opts(argv) {
  const o = {}
  for (let i = 0; i < argv.length; i++) {
    if (!argv[i].startsWith("--")) throw Error(`unexpected argument ${argv[i]}`)
    o[argv[i].slice(2)] = argv[i + 1]
    i++
  }
  return o
}

function wallet(o) {
  if (!o.rpc || !o.key) throw Error("--rpc and --key are required")
  const provider = new ethers.providers.JsonRpcProvider(o.rpc)
  provider.pollingInterval = 250
  return new ethers.Wallet(o.key, provider)
}

async function deploy(o) {
  const w = wallet(o)
  const c = await toolkit.deployFunctionsOracle(w)
  const sm = new toolkit.SubscriptionManager({
    signer: w,
    linkTokenAddress: c.linkTokenContract.address,
    functionsRouterAddress: c.functionsRouterContract.address,
  })
  await sm.initialize()
  const subscriptionId = await sm.createSubscription()
  await sm.fundSubscription({ subscriptionId, juelsAmount: BigInt(o.juels || "100000000000000000000") })
  const block = await w.provider.getBlockNumber()
  return {
    donId: c.donId,
    donIdBytes32: ethers.utils.formatBytes32String(c.donId),
    router: c.functionsRouterContract.address,
    coordinator: c.functionsMockCoordinatorContract.address,
    linkToken: c.linkTokenContract.address,
    subscriptionId,
    deployedBlock: block,
    maxCallbackGasLimit: sim.simulatedRouterConfig.maxCallbackGasLimits[0],
    maxOnChainResponseBytes: sim.DEFAULT_MAX_ON_CHAIN_RESPONSE_BYTES,
    abi: {
      FunctionsRouter: sources.FunctionsRouterSource.abi,
      FunctionsCoordinatorTestHelper: sources.FunctionsCoordinatorTestHelperSource.abi,
      LinkToken: sources.LinkTokenSource.abi,
    },
  }
}

async function addConsumer(o) {
  const sm = new toolkit.SubscriptionManager({
    signer: wallet(o),
    linkTokenAddress: o.link,
    functionsRouterAddress: o.router,
  })
  await sm.initialize()
  const rcpt = await sm.addConsumer({ subscriptionId: Number(o.sub), consumerAddress: o.consumer })
  return { transactionHash: rcpt.transactionHash }
}

// -- the DON loop -------------------------------------------------------------------------------
function requestOf(dataHex) {
  // the toolkit's request CBOR: alternating keys and values (FunctionsRequest.encodeCBOR)
  const items = cbor.decodeAllSync(Buffer.from(dataHex.slice(2), "hex"))
  const req = {}
  for (let i = 0; i + 1 < items.length; i += 2) req[items[i]] = items[i + 1]
  if (typeof req.source !== "string") throw Error("no inline source")
  return {
    source: req.source,
    args: req.args || [],
    bytesArgs: (req.bytesArgs || []).map((b) => "0x" + Buffer.from(b).toString("hex")),
  }
}

function median(results) {
  const bufs = results.map((h) => Buffer.from(h.slice(2), "hex"))
  bufs.sort((a, b) => a.length - b.length || Buffer.compare(a, b))
  return "0x" + bufs[Math.floor((bufs.length - 1) / 2)].toString("hex")
}

function mode(items) {
  const counts = new Map()
  for (const s of items) counts.set(s, (counts.get(s) || 0) + 1)
  return [...counts.entries()].sort((a, b) => b[1] - a[1])[0][0]
}

async function execute(ev, nodes, secrets) {
  let req
  try {
    req = requestOf(ev.args.data)
  } catch (e) {
    return { error: "CBOR parsing error" }
  }
  const ok = []
  const bad = []
  // one node after the other: simulateScript names its temp file by the millisecond
  for (let n = 0; n < nodes; n++) {
    try {
      const r = await toolkit.simulateScript({ ...req, secrets })
      if (r.errorString !== undefined) bad.push(r.errorString)
      else ok.push(r.responseBytesHexstring)
    } catch (e) {
      bad.push(String(e.message || e).slice(0, sim.DEFAULT_MAX_ON_CHAIN_RESPONSE_BYTES))
    }
  }
  if (ok.length > bad.length) return { result: median(ok) }
  return { error: mode(bad) }
}

function report(ev, outcome) {
  const c = ev.args.commitment
  const commitment = ethers.utils.defaultAbiCoder.encode(
    ["bytes32", "address", "uint96", "address", "uint64", "uint32", "uint72", "uint72", "uint40", "uint40", "uint32"],
    [c.requestId, c.coordinator, c.estimatedTotalCostJuels, c.client, c.subscriptionId, c.callbackGasLimit,
      c.adminFee, c.donFee, c.gasOverheadBeforeCallback, c.gasOverheadAfterCallback, c.timeoutTimestamp],
  )
  const err = outcome.error === undefined ? [] : "0x" + Buffer.from(outcome.error).toString("hex")
  return ethers.utils.defaultAbiCoder.encode(
    ["bytes32[]", "bytes[]", "bytes[]", "bytes[]", "bytes[]"],
    [[ev.args.requestId], [outcome.result || []], [err], [commitment], [[]]],
  )
}

function log(obj) {
  process.stdout.write(JSON.stringify({ t: new Date().toISOString(), ...obj }) + "\n")
}

async function run(o) {
  const w = wallet(o)
  const coord = new ethers.Contract(o.coordinator, sources.FunctionsCoordinatorTestHelperSource.abi, w)
  const nodes = Number(o.nodes || sim.numberOfSimulatedNodeExecutions)
  const secrets = o.secrets ? JSON.parse(fs.readFileSync(o.secrets, "utf8")) : {}
  const statePath = o.state
  let state = { nextBlock: Number(o["from-block"] || 0) }
  if (statePath && fs.existsSync(statePath)) state = JSON.parse(fs.readFileSync(statePath, "utf8"))
  const save = () => {
    if (!statePath) return
    fs.mkdirSync(path.dirname(statePath), { recursive: true })
    fs.writeFileSync(statePath + ".tmp", JSON.stringify(state) + "\n")
    fs.renameSync(statePath + ".tmp", statePath)
  }
  let stop = false
  process.on("SIGTERM", () => { stop = true })
  process.on("SIGINT", () => { stop = true })
  log({ event: "ready", coordinator: o.coordinator, transmitter: w.address, nodes, nextBlock: state.nextBlock })
  const answered = new Set()
  const attempts = new Map()
  while (!stop) {
    try {
      const head = await w.provider.getBlockNumber()
      if (head >= state.nextBlock) {
        const reqs = await coord.queryFilter(coord.filters.OracleRequest(), state.nextBlock, head)
        const resps = await coord.queryFilter(coord.filters.OracleResponse(), state.nextBlock, "latest")
        for (const r of resps) answered.add(r.args.requestId)
        let done = true
        for (const ev of reqs) {
          if (stop) { done = false; break }
          const id = ev.args.requestId
          if (answered.has(id)) continue
          const t0 = Date.now()
          const outcome = await execute(ev, nodes, secrets)
          try {
            // the commitment priced the callback at the request's gas price: a transmitter
            // paying a tip on top would cost more than committed (COST_EXCEEDS_COMMITMENT)
            const base = (await w.provider.getBlock("latest")).baseFeePerGas
            const tx = await coord.callReport(report(ev, outcome), {
              gasLimit: sim.callReportGasLimit, maxPriorityFeePerGas: 0, maxFeePerGas: base.mul(2),
            })
            const rcpt = await tx.wait(1)
            answered.add(id)
            log({ event: "fulfilled", requestId: id, ok: outcome.error === undefined,
              error: outcome.error, tx: rcpt.transactionHash, ms: Date.now() - t0 })
          } catch (e) {
            // a report the coordinator refuses is refused again: give up on it after three
            const n = (attempts.get(id) || 0) + 1
            attempts.set(id, n)
            if (n >= 3) answered.add(id)
            throw e
          }
        }
        if (done) {
          state.nextBlock = head + 1
          save()
        }
      }
    } catch (e) {
      // the chain went away or a report failed: the same blocks are read again next round
      log({ event: "error", message: String(e.message || e).slice(0, 300) })
      await new Promise((r) => setTimeout(r, 1000))
    }
    await new Promise((r) => setTimeout(r, Number(o.poll || 300)))
  }
  log({ event: "stopped", nextBlock: state.nextBlock })
}

async function main() {
  const [cmd, ...rest] = process.argv.slice(2)
  const o = opts(rest)
  if (cmd === "deploy") process.stdout.write(JSON.stringify(await deploy(o)) + "\n")
  else if (cmd === "add-consumer") process.stdout.write(JSON.stringify(await addConsumer(o)) + "\n")
  else if (cmd === "run") await run(o)
  else throw Error("usage: don.js deploy|add-consumer|run --rpc URL --key HEX ...")
}

main().then(
  () => { process.exitCode = 0 },
  (e) => {
    process.stderr.write(`don.js: ${e.message || e}\n`)
    process.exitCode = 1
  },
)
