// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";

import {AttestationVerifier} from "../src/AttestationVerifier.sol";
import {Base} from "./Base.t.sol";

/// Drives the verifier with one meter's attestations in any order, repeated, plus forged and
/// tampered ones, and keeps the ground truth.
contract Handler is Test {
    AttestationVerifier internal verifier;
    address internal relayer;
    uint256 internal deviceKey;
    AttestationVerifier.Attestation[] internal atts;
    bytes[] internal sigs;

    uint256 public mintedSum; // what submit() reported as minted
    uint256 public forgedAccepted; // must stay 0
    uint256 public baselineExport;
    bool public baselined;
    uint256 public maxAcceptedExport;
    mapping(uint256 => uint256) public accepted; // per attestation index
    uint256 public acceptedTotal;

    constructor(AttestationVerifier v, address relayer_, uint256 key, bytes32 meterId, uint256 t0, uint64 period, uint256 seed) {
        verifier = v;
        relayer = relayer_;
        deviceKey = key;
        uint64 exportMj = 0;
        for (uint64 i = 0; i < 16; i++) {
            // some intervals exported nothing, none beyond what 10 kW could do
            uint256 d = uint256(keccak256(abi.encode(seed, i))) % (9_000_000_000 + 1);
            if (i % 5 == 3) d = 0;
            exportMj += uint64(d);
            _add(meterId, uint64(t0) + i * period, period, i, exportMj);
        }
    }

    function _add(bytes32 meterId, uint64 start, uint64 period, uint64 i, uint64 exportMj) internal {
        atts.push(AttestationVerifier.Attestation(meterId, i + 1, start, start + period, exportMj, i, i * 90, 90, bytes32(uint256(i))));
        (uint8 v_, bytes32 r, bytes32 s) = vm.sign(deviceKey, verifier.digestOf(atts[i]));
        sigs.push(abi.encodePacked(r, s, v_));
    }

    function count() external view returns (uint256) {
        return atts.length;
    }

    function submitGenuine(uint256 i) external {
        i = bound(i, 0, atts.length - 1);
        vm.prank(relayer);
        try verifier.submit(atts[i], sigs[i]) returns (uint256 mj, uint256) {
            mintedSum += mj;
            accepted[i] += 1;
            acceptedTotal += 1;
            if (!baselined) {
                baselined = true;
                baselineExport = atts[i].exportMj;
            }
            maxAcceptedExport = atts[i].exportMj;
        } catch {}
    }

    function submitForged(uint256 i, uint256 key) external {
        i = bound(i, 0, atts.length - 1);
        key = bound(key, 1, 2 ** 255);
        if (key == deviceKey) return;
        (uint8 v_, bytes32 r, bytes32 s) = vm.sign(key, verifier.digestOf(atts[i]));
        vm.prank(relayer);
        try verifier.submit(atts[i], abi.encodePacked(r, s, v_)) {
            forgedAccepted += 1;
        } catch {}
    }

    function submitTampered(uint256 i, uint64 exportMj) external {
        i = bound(i, 0, atts.length - 1);
        AttestationVerifier.Attestation memory a = atts[i];
        if (a.exportMj == exportMj) return;
        a.exportMj = exportMj;
        vm.prank(relayer);
        try verifier.submit(a, sigs[i]) {
            forgedAccepted += 1;
        } catch {}
    }
}

contract InvariantTest is Base {
    Handler internal handler;

    function setUp() public override {
        super.setUp();
        vm.warp(T0 + 365 days);
        handler = new Handler(verifier, relayer, deviceKey, meterId, T0, PERIOD, 7);
        targetContract(address(handler));
    }

    /// every run really verified something (the first genuine attestation is at least a baseline)
    function afterInvariant() public view {
        assertGe(handler.acceptedTotal(), 1);
    }

    /// total mJ == sum of the verified deltas, counted three ways
    function invariant_supplyEqualsVerifiedDeltas() public view {
        assertEq(energy.totalSupply(), handler.mintedSum());
        assertEq(energy.totalSupply(), verifier.totalVerifiedMj());
        if (handler.baselined()) {
            (,, uint64 exportMj,,,) = verifier.meterState(meterId);
            assertEq(energy.totalSupply(), exportMj - handler.baselineExport());
        }
    }

    /// no mint without a valid device signature
    function invariant_noForgedMint() public view {
        assertEq(handler.forgedAccepted(), 0);
    }

    /// no double mint under any ordering: each attestation verifies at most once, and the
    /// supply never exceeds the counter range that was signed
    function invariant_noDoubleMint() public view {
        for (uint256 i = 0; i < handler.count(); i++) {
            assertLe(handler.accepted(i), 1);
        }
        assertLe(energy.totalSupply(), handler.maxAcceptedExport() - handler.baselineExport());
        // aC: each interval rounds down, so at most one mg per accepted attestation below the
        // credit of the whole supply, never above it
        uint256 whole = expectedMg(energy.totalSupply());
        assertLe(carbon.totalSupply(), whole);
        assertGe(carbon.totalSupply() + handler.acceptedTotal(), whole);
    }
}
