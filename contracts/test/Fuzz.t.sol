// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AttestationVerifier} from "../src/AttestationVerifier.sol";
import {Base} from "./Base.t.sol";

contract FuzzTest is Base {
    uint256 internal constant N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
    uint256 internal constant MAX_PER_SLOT = uint256(RATED_W) * PERIOD * 1000;

    function setUp() public override {
        super.setUp();
        vm.warp(T0 + 365 days);
        submit(att(1, slot(0), 1_000));
    }

    /// any delta within the rated limit mints exactly that many mJ and floor(mJ * factor) aC
    function testFuzz_mintEqualsSignedDelta(uint256 d1, uint256 d2, uint8 gap) public {
        uint64 g = uint64(bound(gap, 0, 20));
        d1 = bound(d1, 0, MAX_PER_SLOT);
        d2 = bound(d2, 0, MAX_PER_SLOT * (g + 1));
        (uint256 mj1, uint256 mg1) = submit(att(2, slot(1), uint64(1_000 + d1)));
        (uint256 mj2, uint256 mg2) = submit(att(3, slot(2 + g), uint64(1_000 + d1 + d2)));
        assertEq(mj1, d1);
        assertEq(mj2, d2);
        assertEq(mg1, expectedMg(d1));
        assertEq(mg2, expectedMg(d2));
        assertEq(energy.totalSupply(), d1 + d2);
        assertEq(carbon.totalSupply(), mg1 + mg2);
    }

    function testFuzz_overLimitAlwaysReverts(uint256 excess, uint8 gap) public {
        uint64 g = uint64(bound(gap, 0, 50));
        uint256 maxMj = MAX_PER_SLOT * (g + 1);
        excess = bound(excess, 1, type(uint64).max - 1_000 - maxMj);
        expectSubmitRevert(att(2, slot(1 + g), uint64(1_000 + maxMj + excess)),
            abi.encodeWithSelector(AttestationVerifier.OverLimit.selector, maxMj + excess, maxMj));
    }

    /// arbitrary bytes never pass for the device's signature
    function testFuzz_randomSignatureNeverMints(bytes memory sig) public {
        AttestationVerifier.Attestation memory a = att(2, slot(1), 5_000);
        vm.prank(relayer);
        vm.expectPartialRevert(AttestationVerifier.InvalidDeviceSignature.selector);
        verifier.submit(a, sig);
    }

    function testFuzz_otherKeysNeverMint(uint256 key) public {
        key = bound(key, 1, N - 1);
        vm.assume(key != deviceKey);
        AttestationVerifier.Attestation memory a = att(2, slot(1), 5_000);
        expectSubmitRevert(a, sign(a, key),
            abi.encodeWithSelector(AttestationVerifier.InvalidDeviceSignature.selector, meterId, vm.addr(key)));
    }

    /// a genuine signature does not carry over to any changed member
    function testFuzz_tamperedMemberNeverMints(uint8 member, uint64 value) public {
        AttestationVerifier.Attestation memory a = att(2, slot(1), 5_000);
        bytes memory sig = sign(a, deviceKey);
        uint256 k = bound(member, 0, 8);
        if (k == 0) a.meterId = keccak256(abi.encode(value));
        if (k == 1) a.seq = value;
        if (k == 2) a.intervalStart = value;
        if (k == 3) a.intervalEnd = value;
        if (k == 4) a.exportMj = value;
        if (k == 5) a.importMj = value;
        if (k == 6) a.firstReadingSeq = value;
        if (k == 7) a.readingCount = uint32(value);
        if (k == 8) a.readingsRoot = keccak256(abi.encode(value));
        vm.assume(verifier.digestOf(a) != verifier.digestOf(att(2, slot(1), 5_000)));
        vm.prank(relayer);
        vm.expectRevert();
        verifier.submit(a, sig);
        assertEq(energy.totalSupply(), 0);
    }

    /// the malleable twin (n - s, flipped v) of every genuine signature is refused
    function testFuzz_highSTwinRefused(uint64 exportMj) public {
        exportMj = uint64(bound(exportMj, 1_000, 1_000 + MAX_PER_SLOT));
        AttestationVerifier.Attestation memory a = att(2, slot(1), exportMj);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(deviceKey, verifier.digestOf(a));
        bytes memory twin = abi.encodePacked(r, bytes32(N - uint256(s)), v == 27 ? uint8(28) : uint8(27));
        expectSubmitRevert(a, twin,
            abi.encodeWithSelector(AttestationVerifier.InvalidDeviceSignature.selector, meterId, address(0)));
        submitRaw(a, abi.encodePacked(r, s, v));
        assertEq(energy.totalSupply(), exportMj - 1_000);
    }
}
