// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {AggregatorV3Interface} from
    "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface.sol";

import {AttestationVerifier} from "../src/AttestationVerifier.sol";
import {CarbonCredit} from "../src/CarbonCredit.sol";
import {EnergyToken} from "../src/EnergyToken.sol";
import {MeterRegistry} from "../src/MeterRegistry.sol";
import {Base} from "./Base.t.sol";

contract AttestationVerifierTest is Base {
    uint256 internal constant N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    function setUp() public override {
        super.setUp();
        vm.warp(T0 + 30 days);
    }

    function _baseline() internal {
        (uint256 mj, uint256 mg) = submit(att(1, slot(0), 5_000_000));
        assertEq(mj, 0, "a baseline mints nothing");
        assertEq(mg, 0);
    }

    function test_baselineThenDeltas() public {
        _baseline();
        (uint256 mj, uint256 mg) = submit(att(2, slot(1), 5_000_000 + 2_700_000_000));
        assertEq(mj, 2_700_000_000);
        assertEq(energy.balanceOf(owner), 2_700_000_000);
        // 0.75 kWh at 380 g/kWh = 285 g = 285,000,000 mg... of the 9-decimal aC
        assertEq(mg, 285_000);
        assertEq(mg, expectedMg(mj));
        assertEq(carbon.balanceOf(owner), mg);
        (mj,) = submit(att(3, slot(2), 5_000_000 + 2_700_000_000)); // night: nothing exported
        assertEq(mj, 0);
        assertEq(energy.totalSupply(), verifier.totalVerifiedMj());
    }

    function test_units() public view {
        assertEq(energy.decimals(), 0);
        assertEq(energy.symbol(), "mJ");
        assertEq(carbon.decimals(), 9);
        assertEq(carbon.symbol(), "aC");
        assertEq(verifier.ATTESTATION_TYPEHASH(), keccak256(bytes(verifier.ATTESTATION_TYPE())));
    }

    function test_replayReverts() public {
        _baseline();
        AttestationVerifier.Attestation memory a = att(2, slot(1), 6_000_000);
        submit(a);
        bytes32 d = verifier.digestOf(a);
        expectSubmitRevert(a, abi.encodeWithSelector(AttestationVerifier.AttestationReplayed.selector, d));
        // the baseline cannot be replayed either
        AttestationVerifier.Attestation memory b = att(1, slot(0), 5_000_000);
        expectSubmitRevert(b, abi.encodeWithSelector(AttestationVerifier.AttestationReplayed.selector, verifier.digestOf(b)));
        assertEq(energy.totalSupply(), 1_000_000);
    }

    function test_reorderedMintsNothingTwice() public {
        _baseline();
        AttestationVerifier.Attestation memory a2 = att(2, slot(1), 6_000_000);
        AttestationVerifier.Attestation memory a3 = att(3, slot(2), 7_000_000);
        submit(a3); // a2 was delayed: a3's cumulative counter covers both intervals
        expectSubmitRevert(a2, abi.encodeWithSelector(AttestationVerifier.OutOfOrder.selector, uint64(3), uint64(2)));
        assertEq(energy.totalSupply(), 2_000_000);
    }

    function test_overlappingIntervalReverts() public {
        _baseline();
        AttestationVerifier.Attestation memory a = att(2, slot(0) + 60, 6_000_000);
        expectSubmitRevert(a, abi.encodeWithSelector(AttestationVerifier.OverlappingInterval.selector, slot(1), slot(0) + 60));
    }

    function test_futureIntervalReverts() public {
        _baseline();
        uint64 start = uint64(block.timestamp) - 300;
        AttestationVerifier.Attestation memory a = att(2, start, 6_000_000); // ends 600 s ahead
        expectSubmitRevert(a, abi.encodeWithSelector(AttestationVerifier.FutureInterval.selector, start + PERIOD, block.timestamp));
        // within the allowed clock skew it passes
        a = att(2, uint64(block.timestamp) - PERIOD + 300, 6_000_000);
        submit(a);
    }

    function test_counterDecreasedReverts() public {
        _baseline();
        expectSubmitRevert(att(2, slot(1), 4_999_999), abi.encodeWithSelector(AttestationVerifier.CounterDecreased.selector, uint64(5_000_000), uint64(4_999_999)));
        AttestationVerifier.Attestation memory a = att(2, slot(1), 6_000_000);
        a.importMj = 0; // import counter went back
        expectSubmitRevert(a, abi.encodeWithSelector(AttestationVerifier.CounterDecreased.selector, uint64(10), uint64(0)));
    }

    function test_overLimitReverts() public {
        _baseline();
        // 10 kW for 900 s = 9e9 mJ is the most one interval may claim
        uint256 maxMj = uint256(RATED_W) * PERIOD * 1000;
        submit(att(2, slot(1), uint64(5_000_000 + maxMj)));
        expectSubmitRevert(att(3, slot(2), uint64(5_000_000 + 2 * maxMj + 1)), abi.encodeWithSelector(AttestationVerifier.OverLimit.selector, maxMj + 1, maxMj));
        // after a gap, the limit covers the whole time since the last counter
        submit(att(3, slot(4), uint64(5_000_000 + 3 * maxMj)));
        assertEq(energy.totalSupply(), 3 * maxMj);
    }

    function test_forgedSignatureReverts() public {
        _baseline();
        AttestationVerifier.Attestation memory a = att(2, slot(1), 6_000_000);
        (address mallory, uint256 malloryKey) = makeAddrAndKey("mallory");
        bytes memory sig = sign(a, malloryKey);
        expectSubmitRevert(a, sig, abi.encodeWithSelector(AttestationVerifier.InvalidDeviceSignature.selector, meterId, mallory));
        // a genuine signature over other numbers does not carry over
        bytes memory good = sign(a, deviceKey);
        a.exportMj += 1;
        vm.prank(relayer);
        vm.expectPartialRevert(AttestationVerifier.InvalidDeviceSignature.selector);
        verifier.submit(a, good);
        assertEq(energy.totalSupply(), 0);
    }

    function test_malleableAndMalformedSignaturesRevert() public {
        _baseline();
        AttestationVerifier.Attestation memory a = att(2, slot(1), 6_000_000);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(deviceKey, verifier.digestOf(a));
        // the high-s twin recovers to the same key under raw ecrecover: refused (EIP-2)
        bytes memory high = abi.encodePacked(r, bytes32(N - uint256(s)), v == 27 ? uint8(28) : uint8(27));
        expectSubmitRevert(a, high, abi.encodeWithSelector(AttestationVerifier.InvalidDeviceSignature.selector, meterId, address(0)));
        // v as 0/1 (recovery id) instead of 27/28
        expectSubmitRevert(a, abi.encodePacked(r, s, v - 27), abi.encodeWithSelector(AttestationVerifier.InvalidDeviceSignature.selector, meterId, address(0)));
        // 64-byte compact form and empty signature
        expectSubmitRevert(a, abi.encodePacked(r, s), abi.encodeWithSelector(AttestationVerifier.InvalidDeviceSignature.selector, meterId, address(0)));
        expectSubmitRevert(a, "", abi.encodeWithSelector(AttestationVerifier.InvalidDeviceSignature.selector, meterId, address(0)));
        // r = 0: ecrecover gives the zero address, which must never pass for a device
        expectSubmitRevert(a, abi.encodePacked(bytes32(0), s, v), abi.encodeWithSelector(AttestationVerifier.InvalidDeviceSignature.selector, meterId, address(0)));
        submitRaw(a, abi.encodePacked(r, s, v));
        assertEq(energy.totalSupply(), 1_000_000);
    }

    function test_revokedMeterReverts() public {
        _baseline();
        vm.prank(owner);
        registry.revoke(meterId, "sold the house");
        expectSubmitRevert(att(2, slot(1), 6_000_000), abi.encodeWithSelector(AttestationVerifier.MeterRevoked.selector, meterId));
    }

    function test_unknownMeterReverts() public {
        AttestationVerifier.Attestation memory a = att(1, slot(0), 1);
        a.meterId = keccak256("meter-99");
        expectSubmitRevert(a, abi.encodeWithSelector(AttestationVerifier.UnknownMeter.selector, a.meterId));
    }

    function test_intervalBeforeCommissioningReverts() public {
        AttestationVerifier.Attestation memory a = att(1, uint64(T0) - PERIOD, 1);
        expectSubmitRevert(a, abi.encodeWithSelector(AttestationVerifier.IntervalBeforeCommissioning.selector, uint64(T0) - PERIOD, uint64(T0)));
        a.intervalStart = slot(1);
        a.intervalEnd = slot(1);
        expectSubmitRevert(a, abi.encodeWithSelector(AttestationVerifier.InvalidInterval.selector, slot(1), slot(1)));
    }

    function test_onlySubmitterRelays() public {
        AttestationVerifier.Attestation memory a = att(1, slot(0), 1);
        bytes memory sig = sign(a, deviceKey);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, owner, verifier.SUBMITTER_ROLE()));
        vm.prank(owner);
        verifier.submit(a, sig);
    }

    function test_rotationStartsNewBaselineAndRetiresOldKey() public {
        _baseline();
        submit(att(2, slot(1), 6_000_000));
        (address dev2, uint256 key2) = makeAddrAndKey("device-2");
        vm.prank(admin);
        registry.rotateDevice(meterId, dev2);
        // the old key's next attestation no longer counts
        AttestationVerifier.Attestation memory old = att(3, slot(2), 7_000_000);
        expectSubmitRevert(old, abi.encodeWithSelector(AttestationVerifier.InvalidDeviceSignature.selector, meterId, device));
        // the new board starts its own counters: its first attestation (after rotation) is a baseline
        vm.warp(block.timestamp + 1 days);
        uint64 s0 = uint64(block.timestamp) - 2 * PERIOD;
        AttestationVerifier.Attestation memory n1 = att(1, s0, 100);
        (uint256 mj,) = submitRaw(n1, sign(n1, key2));
        assertEq(mj, 0);
        AttestationVerifier.Attestation memory n2 = att(2, s0 + PERIOD, 1_100);
        (mj,) = submitRaw(n2, sign(n2, key2));
        assertEq(mj, 1_000);
        assertEq(energy.totalSupply(), 1_001_000);
        // the old address can never be registered again
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(MeterRegistry.DeviceInUse.selector, device));
        registry.register("meter-02", device, owner, ZONE, RATED_W);
    }

    function test_mintsToCurrentOwner() public {
        _baseline();
        address buyer = makeAddr("buyer");
        vm.prank(owner);
        registry.transferMeter(meterId, buyer);
        submit(att(2, slot(1), 6_000_000));
        assertEq(energy.balanceOf(buyer), 1_000_000);
        assertEq(energy.balanceOf(owner), 0);
    }

    function test_missingZoneFeedRevertsWholeSubmission() public {
        (address d3, uint256 k3) = makeAddrAndKey("d3");
        vm.prank(admin);
        bytes32 id = registry.register("meter-03", d3, owner, "XX", RATED_W);
        uint64 s0 = uint64(block.timestamp);
        vm.warp(block.timestamp + 1 days);
        AttestationVerifier.Attestation memory a = att(1, s0, 0);
        a.meterId = id;
        submitRaw(a, sign(a, k3));
        AttestationVerifier.Attestation memory b = att(2, s0 + PERIOD, 1_000);
        b.meterId = id;
        bytes memory sig = sign(b, k3);
        expectSubmitRevert(b, sig, abi.encodeWithSelector(CarbonCredit.UnknownGridZone.selector, bytes32("XX")));
        // nothing was recorded: the same attestation goes through once the zone has a feed
        vm.prank(admin);
        carbon.setZoneFactor("XX", feed, 400 days, "test", bytes32(0));
        feed.updateAnswer(FACTOR);
        submitRaw(b, sig);
        assertEq(energy.balanceOf(owner), 1_000);
    }

    function test_verifiedAtIsThePublicRecord() public {
        AttestationVerifier.Attestation memory a = att(1, slot(0), 5_000_000);
        bytes32 d = verifier.digestOf(a);
        assertEq(verifier.verifiedAt(d), 0);
        submit(a);
        assertEq(verifier.verifiedAt(d), block.number);
    }
}

/// A feed that tries to re-enter the verifier while it is being read.
contract ReentrantFeed {
    AttestationVerifier internal immutable verifier;
    AttestationVerifier.Attestation internal a;
    bytes internal sig;
    uint8 public constant decimals = 8;

    constructor(AttestationVerifier v) {
        verifier = v;
    }

    function arm(AttestationVerifier.Attestation memory a_, bytes memory sig_) external {
        a = a_;
        sig = sig_;
    }

    function latestRoundData() external returns (uint80, int256, uint256, uint256, uint80) {
        verifier.submit(a, sig); // the verifier reads feeds with STATICCALL: this must fail
        return (1, 380e8, block.timestamp, block.timestamp, 1);
    }
}

contract HostileTest is Base {
    function setUp() public override {
        super.setUp();
        vm.warp(T0 + 30 days);
    }

    function test_feedCannotReenter() public {
        ReentrantFeed evil = new ReentrantFeed(verifier);
        vm.startPrank(admin);
        verifier.grantRole(verifier.SUBMITTER_ROLE(), address(evil));
        carbon.setZoneFactor(ZONE, AggregatorV3Interface(address(evil)), 400 days, "evil", bytes32(0));
        vm.stopPrank();
        submit(att(1, slot(0), 0));
        AttestationVerifier.Attestation memory a2 = att(2, slot(1), 1_000_000);
        bytes memory sig = sign(a2, deviceKey);
        evil.arm(a2, sig);
        vm.prank(relayer);
        vm.expectRevert();
        verifier.submit(a2, sig);
        assertEq(energy.totalSupply(), 0);
        (uint64 lastSeq,,,,,) = verifier.meterState(meterId);
        assertEq(lastSeq, 1, "nothing of the failed submission was recorded");
    }

    /// a signature made for another chain (or another verifier) does not verify here
    function test_otherChainsSignatureRefused() public {
        submit(att(1, slot(0), 0));
        AttestationVerifier.Attestation memory a = att(2, slot(1), 1_000);
        uint256 here = block.chainid;
        vm.chainId(1);
        bytes memory sig = sign(a, deviceKey);
        vm.chainId(here);
        vm.prank(relayer);
        vm.expectPartialRevert(AttestationVerifier.InvalidDeviceSignature.selector);
        verifier.submit(a, sig);
        assertEq(energy.totalSupply(), 0);
    }

    function test_roleMisuse() public {
        // the relayer relays and does nothing else
        bytes32 submitter = verifier.SUBMITTER_ROLE();
        vm.startPrank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, relayer, registry.REGISTRAR_ROLE()));
        registry.register("m9", makeAddr("d9"), relayer, ZONE, RATED_W);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, relayer, bytes32(0)));
        verifier.grantRole(submitter, relayer);
        vm.expectRevert(abi.encodeWithSelector(EnergyToken.NotMinter.selector, relayer));
        energy.mint(relayer, 1);
        vm.stopPrank();
        // the admin holds no mint path of its own, even after granting itself every role
        vm.startPrank(admin);
        verifier.grantRole(verifier.SUBMITTER_ROLE(), admin);
        carbon.grantRole(carbon.FACTOR_ADMIN_ROLE(), admin);
        vm.expectRevert(abi.encodeWithSelector(EnergyToken.NotMinter.selector, admin));
        energy.mint(admin, 1);
        vm.stopPrank();
        assertEq(energy.totalSupply(), 0);
    }
}
