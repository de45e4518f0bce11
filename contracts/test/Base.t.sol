// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {MockV3Aggregator} from "@chainlink/contracts/src/v0.8/shared/mocks/MockV3Aggregator.sol";

import {AttestationVerifier} from "../src/AttestationVerifier.sol";
import {CarbonCredit} from "../src/CarbonCredit.sol";
import {EnergyToken} from "../src/EnergyToken.sol";
import {MeterRegistry} from "../src/MeterRegistry.sol";

/// Shared set-up: a registry, the verifier (which deploys both tokens), a zone feed, one meter.
abstract contract Base is Test {
    string internal constant SPEC = "../contract/attestation.json";
    uint256 internal constant T0 = 1_722_000_000;
    uint32 internal constant RATED_W = 10_000;
    uint64 internal constant PERIOD = 900;
    bytes32 internal constant ZONE = "DE";
    // 380 g CO2e/kWh with 8 decimals, the usual Chainlink feed scale
    int256 internal constant FACTOR = 380e8;

    address internal admin = makeAddr("admin");
    address internal relayer = makeAddr("relayer");
    address internal owner = makeAddr("owner");
    address internal device;
    uint256 internal deviceKey;
    bytes32 internal meterId;

    MeterRegistry internal registry;
    AttestationVerifier internal verifier;
    EnergyToken internal energy;
    CarbonCredit internal carbon;
    MockV3Aggregator internal feed;

    function setUp() public virtual {
        vm.warp(T0);
        string memory spec = vm.readFile(SPEC);
        registry = new MeterRegistry(admin);
        verifier = new AttestationVerifier(
            registry, admin, vm.parseJsonString(spec, ".eip712.domain.name"),
            vm.parseJsonString(spec, ".eip712.domain.version"), 300
        );
        energy = verifier.energy();
        carbon = verifier.carbon();
        feed = new MockV3Aggregator(8, FACTOR);
        vm.startPrank(admin);
        verifier.grantRole(verifier.SUBMITTER_ROLE(), relayer);
        carbon.setZoneFactor(ZONE, feed, 400 days, "test: a made-up grid factor", keccak256("dataset"));
        (device, deviceKey) = makeAddrAndKey("device");
        meterId = registry.register("meter-01", device, owner, ZONE, RATED_W);
        vm.stopPrank();
    }

    function att(uint64 seq, uint64 start, uint64 exportMj) internal view returns (AttestationVerifier.Attestation memory a) {
        a = AttestationVerifier.Attestation({
            meterId: meterId,
            seq: seq,
            intervalStart: start,
            intervalEnd: start + PERIOD,
            exportMj: exportMj,
            importMj: seq * 10,
            firstReadingSeq: seq * 90,
            readingCount: 90,
            readingsRoot: keccak256(abi.encode(seq))
        });
    }

    function sign(AttestationVerifier.Attestation memory a, uint256 key) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, verifier.digestOf(a));
        return abi.encodePacked(r, s, v);
    }

    function submit(AttestationVerifier.Attestation memory a) internal returns (uint256 mj, uint256 mg) {
        bytes memory sig = sign(a, deviceKey);
        vm.prank(relayer);
        return verifier.submit(a, sig);
    }

    function submitRaw(AttestationVerifier.Attestation memory a, bytes memory sig) internal returns (uint256, uint256) {
        vm.prank(relayer);
        return verifier.submit(a, sig);
    }

    /// expectRevert applies to the next call, so the signature is made before it
    function expectSubmitRevert(AttestationVerifier.Attestation memory a, bytes memory sig, bytes memory err) internal {
        vm.prank(relayer);
        vm.expectRevert(err);
        verifier.submit(a, sig);
    }

    function expectSubmitRevert(AttestationVerifier.Attestation memory a, bytes memory err) internal {
        expectSubmitRevert(a, sign(a, deviceKey), err);
    }

    /// interval k after commissioning (T0), already past
    function slot(uint64 k) internal pure returns (uint64) {
        return uint64(T0) + k * PERIOD;
    }

    function expectedMg(uint256 mj) internal pure returns (uint256) {
        return mj * uint256(FACTOR) / (3_600_000 * 1e8);
    }
}
