// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AttestationVerifier} from "../src/AttestationVerifier.sol";
import {FunctionsConsumer} from "../src/FunctionsConsumer.sol";
import {Base} from "./Base.t.sol";

/// Stands in for the Functions router: hands out request ids and delivers the DON's answer,
/// capping the callback's gas as the router does.
contract RouterStub {
    uint256 public n;
    bytes public lastData;
    uint32 public lastGas;

    function sendRequest(uint64, bytes calldata data, uint16, uint32 gasLimit, bytes32) external returns (bytes32) {
        lastData = data;
        lastGas = gasLimit;
        return keccak256(abi.encode(++n));
    }

    function deliver(FunctionsConsumer c, bytes32 id, bytes memory response, bytes memory err) external {
        c.handleOracleFulfillment{gas: lastGas}(id, response, err);
    }
}

contract FunctionsConsumerTest is Base {
    RouterStub internal router;
    FunctionsConsumer internal consumer;
    address internal requester = makeAddr("requester");

    event IntervalFulfilled(
        bytes32 indexed meterId, uint64 indexed seq, bytes32 indexed requestId, uint256 mintedMj, uint256 mintedMg
    );
    event IntervalFailed(
        bytes32 indexed meterId, uint64 indexed seq, bytes32 indexed requestId, bytes reason, bool retryable
    );

    function setUp() public override {
        super.setUp();
        router = new RouterStub();
        consumer = new FunctionsConsumer(address(router), verifier, admin);
        vm.startPrank(admin);
        verifier.grantRole(verifier.SUBMITTER_ROLE(), address(consumer));
        consumer.grantRole(consumer.REQUESTER_ROLE(), requester);
        consumer.setRequestConfig(
            FunctionsConsumer.RequestConfig(1, 300_000, 300, "don", "http://server", "return x", "")
        );
        vm.stopPrank();
        vm.warp(slot(20));
    }

    /// the 192-byte response oracle/source.js builds
    function response(AttestationVerifier.Attestation memory a, bytes memory sig) internal pure returns (bytes memory) {
        uint256 w0 = uint256(a.seq) << 192 | uint256(a.intervalStart) << 128 | uint256(a.intervalEnd) << 64 | a.exportMj;
        uint256 w1 = uint256(a.importMj) << 96 | uint256(a.firstReadingSeq) << 32 | a.readingCount;
        (bytes32 r, bytes32 s) = abi.decode(sig, (bytes32, bytes32));
        return abi.encode(w0, w1, a.readingsRoot, r, s, uint256(uint8(sig[64])));
    }

    function request(uint64 seq) internal returns (bytes32 id) {
        vm.prank(requester);
        id = consumer.requestAttestation("meter-01", seq);
    }

    function status(uint64 seq) internal view returns (FunctionsConsumer.Status, bool) {
        FunctionsConsumer.Interval memory it = consumer.intervalOf("meter-01", seq);
        return (it.status, it.retryable);
    }

    function testHoldsOnlyTheSubmitterRole() public view {
        assertTrue(verifier.hasRole(verifier.SUBMITTER_ROLE(), address(consumer)));
        assertFalse(verifier.hasRole(verifier.DEFAULT_ADMIN_ROLE(), address(consumer)));
        assertFalse(registry.hasRole(registry.REGISTRAR_ROLE(), address(consumer)));
        assertFalse(registry.hasRole(registry.DEFAULT_ADMIN_ROLE(), address(consumer)));
        assertFalse(carbon.hasRole(carbon.DEFAULT_ADMIN_ROLE(), address(consumer)));
    }

    function testMintsThroughTheVerifierExactlyOnce() public {
        AttestationVerifier.Attestation memory a1 = att(1, slot(1), 1_000_000);
        AttestationVerifier.Attestation memory a2 = att(2, slot(2), 3_500_000);
        bytes32 id1 = request(1);
        router.deliver(consumer, id1, response(a1, sign(a1, deviceKey)), "");
        bytes32 id2 = request(2);
        vm.expectEmit(address(consumer));
        emit IntervalFulfilled(meterId, 2, id2, 2_500_000, expectedMg(2_500_000));
        router.deliver(consumer, id2, response(a2, sign(a2, deviceKey)), "");
        assertEq(energy.balanceOf(owner), 2_500_000);
        (FunctionsConsumer.Status st,) = status(2);
        assertEq(uint8(st), uint8(FunctionsConsumer.Status.Fulfilled));
        // a replay is refused at request time: the fee is never spent on it
        vm.prank(requester);
        vm.expectRevert(
            abi.encodeWithSelector(FunctionsConsumer.AlreadyRequested.selector, meterId, 2, FunctionsConsumer.Status.Fulfilled)
        );
        consumer.requestAttestation("meter-01", 2);
        // and so is an older interval the verifier passed by another relayer's hand
        vm.prank(requester);
        vm.expectRevert(abi.encodeWithSelector(FunctionsConsumer.AlreadyVerified.selector, meterId, 0, 2));
        consumer.requestAttestation("meter-01", 0);
    }

    function testPendingDuplicateRefused() public {
        request(1);
        vm.prank(requester);
        vm.expectRevert(
            abi.encodeWithSelector(FunctionsConsumer.AlreadyRequested.selector, meterId, 1, FunctionsConsumer.Status.Pending)
        );
        consumer.requestAttestation("meter-01", 1);
    }

    function testDonErrorIsRetryable() public {
        bytes32 id = request(1);
        vm.expectEmit(address(consumer));
        emit IntervalFailed(meterId, 1, id, "server: unreachable", true);
        router.deliver(consumer, id, "", "server: unreachable");
        (FunctionsConsumer.Status st, bool retry) = status(1);
        assertEq(uint8(st), uint8(FunctionsConsumer.Status.Failed));
        assertTrue(retry);
        bytes32 again = request(1);
        assertTrue(again != id);
    }

    function testForgedAttestationFailsFinally() public {
        AttestationVerifier.Attestation memory a1 = att(1, slot(1), 1_000_000);
        (, uint256 mallory) = makeAddrAndKey("mallory");
        bytes32 id = request(1);
        router.deliver(consumer, id, response(a1, sign(a1, mallory)), "");
        (FunctionsConsumer.Status st, bool retry) = status(1);
        assertEq(uint8(st), uint8(FunctionsConsumer.Status.Failed));
        assertFalse(retry);
        assertEq(energy.totalSupply(), 0);
        vm.prank(requester);
        vm.expectRevert(
            abi.encodeWithSelector(FunctionsConsumer.AlreadyRequested.selector, meterId, 1, FunctionsConsumer.Status.Failed)
        );
        consumer.requestAttestation("meter-01", 1);
        vm.prank(admin);
        consumer.reopen("meter-01", 1);
        request(1);
    }

    function testMalformedAndMismatchedResponsesFail() public {
        AttestationVerifier.Attestation memory a1 = att(1, slot(1), 1_000_000);
        bytes32 id = request(1);
        router.deliver(consumer, id, hex"deadbeef", "");
        (FunctionsConsumer.Status st,) = status(1);
        assertEq(uint8(st), uint8(FunctionsConsumer.Status.Failed));
        vm.prank(admin);
        consumer.reopen("meter-01", 1);
        id = request(1);
        AttestationVerifier.Attestation memory a2 = att(2, slot(2), 2_000_000);
        vm.expectEmit(address(consumer));
        emit IntervalFailed(
            meterId, 1, id, abi.encodeWithSelector(FunctionsConsumer.ResponseMismatch.selector, 1, 2), false
        );
        router.deliver(consumer, id, response(a2, sign(a2, deviceKey)), "");
        assertEq(energy.totalSupply(), 0);
        assertEq(verifier.verifiedAt(verifier.digestOf(a1)), 0);
    }

    function testOnlyRouterFulfilsOnlySelfRelays() public {
        bytes32 id = request(1);
        vm.expectRevert();
        consumer.handleOracleFulfillment(id, "", "x");
        vm.expectRevert(FunctionsConsumer.OnlySelf.selector);
        consumer.relay(meterId, 1, new bytes(192));
        vm.expectRevert();
        consumer.requestAttestation("meter-01", 5);
    }

    function testExpiry() public {
        bytes32 id = request(1);
        vm.prank(requester);
        vm.expectRevert();
        consumer.expire(id);
        vm.warp(block.timestamp + 301);
        vm.prank(requester);
        consumer.expire(id);
        (FunctionsConsumer.Status st, bool retry) = status(1);
        assertEq(uint8(st), uint8(FunctionsConsumer.Status.Failed));
        assertTrue(retry);
        // the late answer changes nothing
        AttestationVerifier.Attestation memory a1 = att(1, slot(1), 1_000_000);
        router.deliver(consumer, id, response(a1, sign(a1, deviceKey)), "");
        assertEq(verifier.verifiedAt(verifier.digestOf(a1)), 0);
    }

    function testFulfilmentFitsTheCallbackGas() public {
        // the most expensive mint: first credit to a new owner, through the 300k callback
        AttestationVerifier.Attestation memory a1 = att(1, slot(1), 1_000_000);
        AttestationVerifier.Attestation memory a2 = att(2, slot(2), 3_000_000);
        router.deliver(consumer, request(1), response(a1, sign(a1, deviceKey)), "");
        router.deliver(consumer, request(2), response(a2, sign(a2, deviceKey)), "");
        (FunctionsConsumer.Status st,) = status(2);
        assertEq(uint8(st), uint8(FunctionsConsumer.Status.Fulfilled));
        assertEq(router.lastGas(), 300_000);
    }
}
