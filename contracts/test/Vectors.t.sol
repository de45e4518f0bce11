// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {MockV3Aggregator} from "@chainlink/contracts/src/v0.8/shared/mocks/MockV3Aggregator.sol";

import {AttestationVerifier} from "../src/AttestationVerifier.sol";
import {MeterRegistry} from "../src/MeterRegistry.sol";

/// The verifier against contract/attestation-vectors.json (made with eth-account): same type
/// string, same digests, the vector signatures recover and mint.
contract VectorsTest is Test {
    string internal json;
    AttestationVerifier internal verifier;
    MeterRegistry internal registry;

    function setUp() public {
        json = vm.readFile("../contract/attestation-vectors.json");
        address admin = makeAddr("admin");
        registry = new MeterRegistry(admin);
        address at = vm.parseJsonAddress(json, ".domain.verifyingContract");
        assertEq(block.chainid, vm.parseJsonUint(json, ".domain.chainId"));
        deployCodeTo(
            "AttestationVerifier.sol:AttestationVerifier",
            abi.encode(registry, admin, vm.parseJsonString(json, ".domain.name"),
                       vm.parseJsonString(json, ".domain.version"), uint64(300)),
            at
        );
        verifier = AttestationVerifier(at);
        vm.warp(1_722_000_000);
        MockV3Aggregator feed = new MockV3Aggregator(8, 380e8);
        vm.startPrank(admin);
        verifier.grantRole(verifier.SUBMITTER_ROLE(), address(this));
        verifier.carbon().setZoneFactor("DE", feed, 400 days, "test", bytes32(0));
        registry.register("meter-01", vm.parseJsonAddress(json, ".address"), makeAddr("owner"), "DE", 10_000);
        vm.stopPrank();
    }

    function _case(uint256 i) internal view returns (AttestationVerifier.Attestation memory a, bytes memory sig) {
        string memory p = string.concat(".cases[", vm.toString(i), "].wire");
        a = AttestationVerifier.Attestation({
            meterId: keccak256(bytes(vm.parseJsonString(json, string.concat(p, ".meterId")))),
            seq: uint64(vm.parseJsonUint(json, string.concat(p, ".seq"))),
            intervalStart: uint64(vm.parseJsonUint(json, string.concat(p, ".intervalStart"))),
            intervalEnd: uint64(vm.parseJsonUint(json, string.concat(p, ".intervalEnd"))),
            exportMj: uint64(vm.parseJsonUint(json, string.concat(p, ".exportMj"))),
            importMj: uint64(vm.parseJsonUint(json, string.concat(p, ".importMj"))),
            firstReadingSeq: uint64(vm.parseJsonUint(json, string.concat(p, ".firstReadingSeq"))),
            readingCount: uint32(vm.parseJsonUint(json, string.concat(p, ".readingCount"))),
            readingsRoot: vm.parseJsonBytes32(json, string.concat(p, ".readingsRoot"))
        });
        sig = vm.parseJsonBytes(json, string.concat(p, ".signature"));
    }

    function test_typeStringAndDomain() public view {
        assertEq(verifier.ATTESTATION_TYPE(), vm.parseJsonString(json, ".type_string"));
        assertEq(verifier.ATTESTATION_TYPEHASH(), vm.parseJsonBytes32(json, ".type_hash"));
        (, string memory name, string memory version, uint256 chainId, address at,,) = verifier.eip712Domain();
        assertEq(name, vm.parseJsonString(json, ".domain.name"));
        assertEq(version, vm.parseJsonString(json, ".domain.version"));
        assertEq(chainId, 31337);
        assertEq(at, address(verifier));
        assertEq(keccak256("meter-01"), vm.parseJsonBytes32(json, ".meter_key"));
    }

    function test_digestsAndSignatures() public view {
        for (uint256 i = 0; i < 3; i++) {
            (AttestationVerifier.Attestation memory a, bytes memory sig) = _case(i);
            bytes32 d = verifier.digestOf(a);
            assertEq(d, vm.parseJsonBytes32(json, string.concat(".cases[", vm.toString(i), "].digest")));
            (uint8 v, bytes32 r, bytes32 s) = (uint8(sig[64]), bytes32(0), bytes32(0));
            assembly {
                r := mload(add(sig, 32))
                s := mload(add(sig, 64))
            }
            assertEq(ecrecover(d, v, r, s), vm.parseJsonAddress(json, ".address"));
            // the ABI form the server hands to an oracle decodes to the same attestation
            (AttestationVerifier.Attestation memory b, bytes memory sig2) = abi.decode(
                vm.parseJsonBytes(json, string.concat(".cases[", vm.toString(i), "].abi_encoded")),
                (AttestationVerifier.Attestation, bytes)
            );
            assertEq(verifier.digestOf(b), d);
            assertEq(sig2, sig);
        }
    }

    function test_vectorSignaturesMint() public {
        vm.warp(1_722_003_000);
        (AttestationVerifier.Attestation memory a0, bytes memory s0) = _case(0);
        (AttestationVerifier.Attestation memory a1, bytes memory s1) = _case(1);
        verifier.submit(a0, s0);
        (uint256 mj,) = verifier.submit(a1, s1);
        assertEq(mj, a1.exportMj - a0.exportMj);
    }
}
