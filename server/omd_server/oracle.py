"""The server's oracle requester: every stored attestation is asked for, once, through the
Chainlink Functions consumer (contracts/src/FunctionsConsumer.sol), and its outcome recorded.

One background thread, in one server process (setting oracle_requester):
- queues each newly stored attestation (storage/oracle.py);
- per meter, in seq order and one at a time (so each interval mints exactly its own delta),
  asks the consumer for it, after reading the consumer's own record of that interval: after a
  restart a request that already went out is adopted, never sent twice; a fulfilled interval
  is never requested again;
- retries what failed off-chain (server unreachable for the DON, chain RPC down) with
  exponential backoff, up to oracle_max_attempts; a verifier revert is final;
- follows the consumer's events and CarbonCredit's retirements with web3.py from a cursor kept
  in the database, so outcomes, balances and retirements are current and survive restarts;
- hands the token figures to the Home Assistant publisher (tokens_ha.py).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from . import chain
from .storage import StorageUnavailable
from .storage.oracle import oracle_store

log = logging.getLogger("omd_server.oracle")
STATUS = ("none", "pending", "fulfilled", "failed")
MJ_PER_KWH = 3_600_000_000
MG_PER_KG = 1_000_000
LOG_CHUNK = 2000


def reason_text(reason: bytes, abis: list[list[dict[str, Any]]]) -> str:
    """A failure reason as a person reads it: the DON's error text, or a named revert."""
    if not reason:
        return "reverted without a reason (out of gas?)"
    try:
        text = reason.decode("utf-8")
        if text.isprintable():
            return text
    except UnicodeDecodeError:
        pass
    return decode_revert(reason, abis)


def decode_revert(data: bytes, abis: list[list[dict[str, Any]]]) -> str:
    from eth_abi import decode
    from eth_utils import keccak, to_checksum_address

    for abi in abis:
        for e in abi:
            if e.get("type") != "error":
                continue
            types = [i["type"] for i in e["inputs"]]
            if keccak(f"{e['name']}({','.join(types)})".encode())[:4] == data[:4]:
                try:
                    args = decode(types, data[4:])
                except Exception:
                    break
                shown = ["0x" + a.hex() if isinstance(a, bytes) else to_checksum_address(a)
                         if t == "address" else str(a) for a, t in zip(args, types, strict=True)]
                return f"{e['name']}({', '.join(shown)})"
    return "0x" + data.hex()


class Requester:
    def __init__(self, cfg, storage, publish=None):
        self.cfg = cfg
        self.st = storage
        self.publish = publish
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self.thread = threading.Thread(target=self._run, name="omd-oracle", daemon=True)
        self.block = 0
        self._published_block = -1
        self.last_error = ""
        self._dep = None
        self._key = None

    # -- plumbing --------------------------------------------------------------------------
    def start(self) -> Requester:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.wake.set()
        self.thread.join(timeout=15)

    def notify(self) -> None:
        """An attestation was stored: look now rather than at the next poll."""
        self.wake.set()

    def dep(self) -> chain.Deployment:
        d = chain.deployment(self.cfg)
        if "FunctionsConsumer" not in d.doc["contracts"]:
            raise chain.ChainUnavailable("the deployment file has no FunctionsConsumer "
                                         "(omd chain up deploys the oracle)")
        return d

    def abis(self, d: chain.Deployment) -> list[list[dict[str, Any]]]:
        return [c["abi"] for c in d.doc["contracts"].values()]

    def _send(self, d: chain.Deployment, fn) -> dict[str, Any]:
        """Send a consumer call from the requester account: signed with oracle_key_file when
        configured (public networks), else from the dev chain's unlocked requester account."""
        w3 = d.w3()
        if self.cfg.oracle_key_file:
            from eth_account import Account

            if self._key is None:
                self._key = Account.from_key(Path(self.cfg.oracle_key_file).read_text().strip())
            tx = fn.build_transaction({"from": self._key.address, "nonce":
                                       w3.eth.get_transaction_count(self._key.address, "pending"),
                                       "chainId": d.chain_id})
            h = w3.eth.send_raw_transaction(self._key.sign_transaction(tx).raw_transaction)
        else:
            h = fn.transact({"from": d.doc["accounts"]["requester"]})
        return w3.eth.wait_for_transaction_receipt(h, timeout=60)

    def sender(self, d: chain.Deployment) -> str:
        if self.cfg.oracle_key_file:
            from eth_account import Account

            if self._key is None:
                self._key = Account.from_key(Path(self.cfg.oracle_key_file).read_text().strip())
            return self._key.address
        return d.doc["accounts"]["requester"]

    # -- the loop --------------------------------------------------------------------------
    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.step()
                self.last_error = ""
            except (chain.ChainUnavailable, StorageUnavailable) as exc:
                self._note(f"{type(exc).__name__}: {exc}")
            except Exception as exc:  # RPC errors come in many classes; keep the loop alive
                self._note(f"{type(exc).__name__}: {str(exc)[:300]}")
            self.wake.wait(self.cfg.oracle_poll_s)
            self.wake.clear()

    def _note(self, msg: str) -> None:
        if msg != self.last_error:
            log.warning("oracle requester: %s (retrying)", msg)
        self.last_error = msg

    def step(self) -> None:
        d = self.dep()
        store = oracle_store(self.st)
        store.enqueue_new()
        changed = self.sync_events(d)
        changed |= self.dispatch(d)
        # balances and retirements only move with a block: read them once per new block
        if self.publish is not None and (changed or self.block != self._published_block):
            self.publish(self.figures(d), changed)
            self._published_block = self.block

    def sync_events(self, d: chain.Deployment) -> bool:
        """Apply the consumer's events since the cursor; True if anything changed."""
        store = oracle_store(self.st)
        w3 = d.w3()
        consumer = d.contract("FunctionsConsumer")
        head = w3.eth.block_number
        self.block = head
        start = store.cursor("consumer")
        if start is None:
            # from the contracts' deployment: retirements may predate the oracle
            start = int(d.doc.get("deployed_block", 0))
        changed = False
        abis = self.abis(d)
        carbon = d.contract("CarbonCredit")
        while start <= head:
            end = min(head, start + LOG_CHUNK - 1)
            for ev in carbon.events.Retired().get_logs(from_block=start, to_block=end):
                store.add_retirement(ev["args"]["id"], ev["args"]["retiree"],
                                     ev["args"]["amount"], ev["blockNumber"])
                changed = True
            for ev in consumer.events.IntervalFulfilled().get_logs(from_block=start, to_block=end):
                row = store.by_request("0x" + ev["args"]["requestId"].hex())
                if row is None or row["state"] == "fulfilled":
                    continue
                ts = w3.eth.get_block(ev["blockNumber"])["timestamp"]
                store.update(row["meter_id"], row["seq"], state="fulfilled",
                             fulfil_tx="0x" + ev["transactionHash"].hex().removeprefix("0x"),
                             fulfil_block=ev["blockNumber"], minted_mj=ev["args"]["mintedMj"],
                             minted_mg=ev["args"]["mintedMg"], fulfilled_at=ts, reason=None,
                             retryable=0)
                log.info("minted %s/%s: %d mJ, %d mg CO2e", row["meter_id"], row["seq"],
                         ev["args"]["mintedMj"], ev["args"]["mintedMg"])
                changed = True
            for ev in consumer.events.IntervalFailed().get_logs(from_block=start, to_block=end):
                row = store.by_request("0x" + ev["args"]["requestId"].hex())
                if row is None or row["state"] != "pending":
                    continue
                why = reason_text(bytes(ev["args"]["reason"]), abis)
                retry = bool(ev["args"]["retryable"])
                attempts = row["attempts"]
                store.update(row["meter_id"], row["seq"], state="failed", reason=why[:500],
                             retryable=int(retry and attempts < self.cfg.oracle_max_attempts),
                             fulfil_tx="0x" + ev["transactionHash"].hex().removeprefix("0x"),
                             next_try_at=time.time() + self.backoff(attempts))
                log.warning("request %s/%s failed%s: %s", row["meter_id"], row["seq"],
                            " (will retry)" if retry else "", why)
                changed = True
            start = end + 1
            store.set_cursor("consumer", start)
        return changed

    def backoff(self, attempts: int) -> float:
        return min(self.cfg.oracle_backoff_s * 2 ** max(attempts - 1, 0), 300.0)

    def dispatch(self, d: chain.Deployment) -> bool:
        """Request the next interval of every meter that has none on its way."""
        store = oracle_store(self.st)
        consumer = d.contract("FunctionsConsumer")
        now = time.time()
        # the verifier refuses an interval ending after its block time (FutureInterval, final):
        # a meter whose clock runs ahead of the chain waits here instead
        chain_now = d.w3().eth.get_block("latest")["timestamp"]
        busy: set[str] = set()
        changed = False
        for row in store.open_rows():
            m = row["meter_id"]
            if m in busy:
                continue
            busy.add(m)  # one request on its way per meter, in seq order
            if row["state"] == "pending":
                changed |= self._maybe_expire(d, row)
                continue
            if row["next_try_at"] > now or row["interval_end"] > chain_now:
                continue
            it = consumer.functions.intervalOf(m, row["seq"]).call()
            status, retryable, _, request_id = STATUS[it[0]], it[1], it[2], "0x" + it[3].hex()
            if status == "pending":  # sent before a restart: adopt it
                store.update(m, row["seq"], state="pending", request_id=request_id)
                changed = True
                continue
            if status == "fulfilled":
                store.update(m, row["seq"], state="pending", request_id=request_id)
                store.set_cursor("consumer", int(d.doc.get("oracle", {}).get("deployed_block", 0)))
                changed = True
                continue
            if status == "failed" and not retryable:
                store.update(m, row["seq"], state="failed", retryable=0, request_id=request_id,
                             reason=row["reason"] or "failed on-chain (see the consumer's events)")
                changed = True
                continue
            changed |= self._request(d, row)
        return changed

    def _request(self, d: chain.Deployment, row: dict[str, Any]) -> bool:
        from web3.exceptions import ContractCustomError, ContractLogicError

        store = oracle_store(self.st)
        m, seq = row["meter_id"], row["seq"]
        fn = d.contract("FunctionsConsumer").functions.requestAttestation(m, seq)
        attempts = row["attempts"] + 1
        try:
            fn.call({"from": self.sender(d)})  # a refusal costs nothing when found here
        except ContractCustomError as exc:
            why = decode_revert(bytes.fromhex(str(exc.data)[2:]), self.abis(d))
            it = d.contract("FunctionsConsumer").functions.intervalOf(m, seq).call()
            if why.startswith("AlreadyRequested(") and STATUS[it[0]] in ("pending", "fulfilled"):
                # another requester (a second process) got there first: follow its request
                store.update(m, seq, state="pending", request_id="0x" + it[3].hex())
                return True
            store.update(m, seq, state="failed", retryable=0, attempts=attempts,
                         reason=f"refused at request time: {why}")
            log.warning("request %s/%s refused: %s", m, seq, why)
            return True
        except ContractLogicError as exc:
            store.update(m, seq, state="failed", retryable=0, attempts=attempts,
                         reason=f"refused at request time: {exc}"[:500])
            return True
        try:
            rcpt = self._send(d, fn)
        except Exception as exc:
            store.update(m, seq, state="queued", attempts=attempts,
                         reason=f"request not sent: {type(exc).__name__}: {str(exc)[:200]}",
                         next_try_at=time.time() + self.backoff(attempts))
            raise
        evs = d.contract("FunctionsConsumer").events.IntervalRequested().process_receipt(rcpt)
        if rcpt["status"] != 1 or not evs:
            store.update(m, seq, state="queued", attempts=attempts, reason="request reverted",
                         next_try_at=time.time() + self.backoff(attempts))
            return True
        store.update(m, seq, state="pending", attempts=attempts, reason=None,
                     request_id="0x" + evs[0]["args"]["requestId"].hex(),
                     request_tx="0x" + rcpt["transactionHash"].hex().removeprefix("0x"),
                     requested_at=int(time.time()))
        log.info("requested %s/%s (attempt %d)", m, seq, attempts)
        return True

    def _maybe_expire(self, d: chain.Deployment, row: dict[str, Any]) -> bool:
        limit = int(d.doc.get("oracle", {}).get("expire_after_s", 300))
        if not row["requested_at"] or time.time() - row["requested_at"] <= limit + 30:
            return False
        fn = d.contract("FunctionsConsumer").functions.expire(row["request_id"])
        try:
            fn.call({"from": self.sender(d)})
        except Exception:
            return False  # answered meanwhile, or the chain's clock is behind: look again later
        self._send(d, fn)
        return True

    # -- figures for Home Assistant and the public page --------------------------------------
    def figures(self, d: chain.Deployment) -> dict[str, dict[str, Any]]:
        """Per meter: certified energy (today, total), pending/failed counts, the owner's aC
        balance and retirements, the last fulfilment, the block height."""
        from datetime import datetime
        from zoneinfo import ZoneInfo

        store = oracle_store(self.st)
        tz = ZoneInfo(self.cfg.timezone)
        day0 = datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        carbon = d.contract("CarbonCredit")
        energy = d.contract("EnergyToken")
        out = {}
        for m in store.meters():
            rows = store.meter(m)
            done = [r for r in rows if r["state"] == "fulfilled"]
            owner = d.meter(m)["owner"]
            retired = store.retired(owner)
            out[m] = {
                "owner": owner,
                "certified_total_mj": sum(r["minted_mj"] or 0 for r in done),
                "certified_today_mj": sum(r["minted_mj"] or 0 for r in done
                                          if r["interval_end"] >= day0),
                "intervals_pending": sum(r["state"] in ("queued", "pending") for r in rows),
                "intervals_failed": sum(r["state"] == "failed" for r in rows),
                "mj_balance": energy.functions.balanceOf(owner).call(),
                "ac_balance_mg": carbon.functions.balanceOf(owner).call(),
                "ac_retired_mg": retired,
                "last_fulfilled_at": max((r["fulfilled_at"] for r in done), default=None),
                "block": self.block,
            }
        return out

