// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

import {CarbonCredit} from "./CarbonCredit.sol";
import {EnergyToken} from "./EnergyToken.sol";
import {MeterRegistry} from "./MeterRegistry.sol";

/// @title Verifies meter-signed interval attestations and mints mJ and aC for them.
/// @notice The meter, not the server or the oracle, vouches for the energy: an attestation
///         (contract/attestation.json) mints only if the meter's registered device key signed
///         it (EIP-712, low-s, v 27/28), and only the increase of the signed cumulative export
///         counter since the last verified attestation of that meter and key. Replays,
///         reordered, overlapping, future, over-limit and revoked-meter attestations revert
///         with named errors and mint nothing. A meter's first attestation after registration
///         or key rotation sets its baseline and mints nothing: energy from before it was
///         registered is never tokenised.
///
///         The verifier deploys both tokens and is their only minter, fixed for ever: no role,
///         not even the admin, can mint without a device signature. SUBMITTER_ROLE decides who
///         may relay (the Chainlink Functions consumer, a relayer); it cannot change what mints.
contract AttestationVerifier is EIP712, AccessControl {
    /// @notice EIP-712 encodeType of Attestation; a test holds it equal to contract/attestation.json.
    string public constant ATTESTATION_TYPE =
        "Attestation(string meterId,uint64 seq,uint64 intervalStart,uint64 intervalEnd,uint64 exportMj,uint64 importMj,uint64 firstReadingSeq,uint32 readingCount,bytes32 readingsRoot)";
    bytes32 public constant ATTESTATION_TYPEHASH = keccak256(bytes(ATTESTATION_TYPE));
    /// @notice May call submit (the oracle's consumer contract, a relayer).
    bytes32 public constant SUBMITTER_ROLE = keccak256("SUBMITTER_ROLE");

    /// @dev meterId is keccak256 of the meter id string: exactly how EIP-712 encodes the
    ///      `string meterId` member, so the struct hash needs no string on-chain.
    struct Attestation {
        bytes32 meterId;
        uint64 seq;
        uint64 intervalStart;
        uint64 intervalEnd;
        uint64 exportMj;
        uint64 importMj;
        uint64 firstReadingSeq;
        uint32 readingCount;
        bytes32 readingsRoot;
    }

    /// @dev one slot for the hot path, one for the key epoch
    struct MeterState {
        uint64 lastSeq;
        uint64 lastEnd;
        uint64 exportMj;
        uint64 importMj;
        uint32 epoch;
        bool started;
    }

    MeterRegistry public immutable registry;
    EnergyToken public immutable energy;
    CarbonCredit public immutable carbon;
    /// @notice How far an interval's end may lie ahead of the block time (clock skew).
    uint64 public immutable maxFutureSkew;

    mapping(bytes32 meterId => MeterState) public meterState;
    /// @notice Block number at which an attestation digest was verified (0: never). Anyone can
    ///         recompute a digest from the public attestation and readings and look it up here.
    mapping(bytes32 digest => uint256 blockNumber) public verifiedAt;
    /// @notice Sum of all minted energy deltas (equals energy.totalSupply(): the tokens burn nothing).
    uint256 public totalVerifiedMj;

    event AttestationVerified(
        bytes32 indexed meterId, uint64 indexed seq, bytes32 indexed digest, Attestation attestation
    );
    event Baseline(bytes32 indexed meterId, uint32 epoch, uint64 seq, uint64 exportMj, uint64 importMj);
    event Minted(bytes32 indexed meterId, address indexed owner, uint256 energyMj, uint256 carbonMg);

    error AttestationReplayed(bytes32 digest);
    error UnknownMeter(bytes32 meterId);
    error MeterRevoked(bytes32 meterId);
    error InvalidDeviceSignature(bytes32 meterId, address recovered);
    error InvalidInterval(uint64 start, uint64 end);
    error FutureInterval(uint64 end, uint256 blockTime);
    error IntervalBeforeCommissioning(uint64 start, uint64 commissionedAt);
    error OutOfOrder(uint64 lastSeq, uint64 seq);
    error OverlappingInterval(uint64 lastEnd, uint64 start);
    error CounterDecreased(uint64 previous, uint64 claimed);
    error OverLimit(uint256 deltaMj, uint256 maxMj);

    constructor(MeterRegistry registry_, address admin, string memory name, string memory version, uint64 maxFutureSkew_)
        EIP712(name, version)
    {
        registry = registry_;
        maxFutureSkew = maxFutureSkew_;
        energy = new EnergyToken();
        carbon = new CarbonCredit(admin);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @notice EIP-712 digest the meter signs for `a` under this contract's domain.
    function digestOf(Attestation calldata a) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(
            ATTESTATION_TYPEHASH, a.meterId, a.seq, a.intervalStart, a.intervalEnd, a.exportMj,
            a.importMj, a.firstReadingSeq, a.readingCount, a.readingsRoot)));
    }

    /// @notice Verify one attestation and mint its energy delta (mJ) and credit (aC) to the
    ///         meter's owner. Returns what was minted (0, 0 for a baseline).
    function submit(Attestation calldata a, bytes calldata signature)
        external
        onlyRole(SUBMITTER_ROLE)
        returns (uint256 mintedMj, uint256 mintedMg)
    {
        bytes32 digest = digestOf(a);
        if (verifiedAt[digest] != 0) revert AttestationReplayed(digest);
        MeterRegistry.Meter memory m = _signedByMeter(a, digest, signature);
        bool baseline;
        (baseline, mintedMj) = _advance(a, m);
        verifiedAt[digest] = block.number;
        emit AttestationVerified(a.meterId, a.seq, digest, a);
        if (baseline) return (0, 0);
        totalVerifiedMj += mintedMj;
        if (mintedMj > 0) {
            energy.mint(m.owner, mintedMj);
            mintedMg = carbon.mintForEnergy(m.owner, m.gridZone, mintedMj);
        }
        // the calls above go to this contract's own immutable tokens (plain OpenZeppelin ERC20,
        // no hooks), after every state change: nothing can re-enter between them and the event
        // slither-disable-next-line reentrancy-events
        emit Minted(a.meterId, m.owner, mintedMj, mintedMg);
    }

    /// @dev The meter is registered, live, its device key signed `digest`, and the interval is
    ///      well formed, not in the future and not before the key was commissioned.
    function _signedByMeter(Attestation calldata a, bytes32 digest, bytes calldata signature)
        private
        view
        returns (MeterRegistry.Meter memory m)
    {
        m = registry.meter(a.meterId);
        if (m.device == address(0)) revert UnknownMeter(a.meterId);
        if (m.revoked) revert MeterRevoked(a.meterId);
        // the third value only details `err`, which is checked; a malleable (high-s), v not
        // 27/28, wrong-length or zero-address signature is an error here, never a signer
        // slither-disable-next-line unused-return
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest, signature);
        if (err != ECDSA.RecoverError.NoError || signer != m.device) {
            revert InvalidDeviceSignature(a.meterId, signer);
        }
        if (a.intervalEnd <= a.intervalStart) revert InvalidInterval(a.intervalStart, a.intervalEnd);
        // the device's clock, not the validator's, is what this bounds: seconds of leeway are harmless
        // slither-disable-start timestamp
        // forge-lint: disable-next-line(block-timestamp)
        if (a.intervalEnd > block.timestamp + maxFutureSkew) {
            revert FutureInterval(a.intervalEnd, block.timestamp);
        }
        // slither-disable-end timestamp
        if (a.intervalStart < m.commissionedAt) {
            revert IntervalBeforeCommissioning(a.intervalStart, m.commissionedAt);
        }
    }

    /// @dev Order, overlap, counter and limit checks against the meter's last verified
    ///      attestation; records this one. A new key epoch starts a baseline (mints nothing).
    function _advance(Attestation calldata a, MeterRegistry.Meter memory m)
        private
        returns (bool baseline, uint256 deltaMj)
    {
        MeterState memory s = meterState[a.meterId];
        baseline = !s.started || s.epoch != m.epoch;
        if (!baseline) {
            if (a.seq <= s.lastSeq) revert OutOfOrder(s.lastSeq, a.seq);
            if (a.intervalStart < s.lastEnd) revert OverlappingInterval(s.lastEnd, a.intervalStart);
            if (a.exportMj < s.exportMj) revert CounterDecreased(s.exportMj, a.exportMj);
            if (a.importMj < s.importMj) revert CounterDecreased(s.importMj, a.importMj);
            deltaMj = a.exportMj - s.exportMj;
            // the meter cannot have exported more than its rated power since the last counter
            uint256 maxMj = uint256(m.ratedPowerW) * (a.intervalEnd - s.lastEnd) * 1000;
            if (deltaMj > maxMj) revert OverLimit(deltaMj, maxMj);
        }
        meterState[a.meterId] = MeterState(a.seq, a.intervalEnd, a.exportMj, a.importMj, m.epoch, true);
        if (baseline) emit Baseline(a.meterId, m.epoch, a.seq, a.exportMj, a.importMj);
    }
}
