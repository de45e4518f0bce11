// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";
import {FunctionsClient} from "@chainlink/contracts/src/v0.8/functions/v1_0_0/FunctionsClient.sol";
import {FunctionsRequest} from "@chainlink/contracts/src/v0.8/functions/v1_0_0/libraries/FunctionsRequest.sol";

import {AttestationVerifier} from "./AttestationVerifier.sol";

/// @title Chainlink Functions consumer: fetches a meter's signed interval attestation from the
///        server's public API through the DON and hands it to the AttestationVerifier.
/// @notice The oracle only carries the attestation: the verifier checks the meter's device
///         signature and mints, so a lying server or DON can make a request fail but never
///         mint. This contract holds the verifier's SUBMITTER_ROLE and no other role anywhere.
///
///         Every (meter, seq) is requested at most once while it is pending or done: a failed
///         callback still costs the subscription its fee, so duplicates and intervals the
///         verifier already passed are refused here, at request time, not only at mint.
///         A DON-side failure (server down, malformed or hostile document) leaves the interval
///         retryable; a verifier revert (forged, replayed, out of order) is final, since
///         asking again would pay for the same revert; the admin can reopen one.
///
///         The response is the attestation in 192 bytes (the DON returns at most 256):
///         abi.encode(uint256 w0, uint256 w1, bytes32 readingsRoot, bytes32 r, bytes32 s, uint256 v)
///         with w0 = seq << 192 | intervalStart << 128 | intervalEnd << 64 | exportMj and
///         w1 = importMj << 96 | firstReadingSeq << 32 | readingCount (oracle/source.js).
///         The meter id is not in the response: it is the requested one, by construction.
contract FunctionsConsumer is FunctionsClient, AccessControl {
    using FunctionsRequest for FunctionsRequest.Request;

    /// @notice May request attestations (the server's requester account).
    bytes32 public constant REQUESTER_ROLE = keccak256("REQUESTER_ROLE");
    uint256 public constant RESPONSE_BYTES = 192;

    enum Status {
        None,
        Pending,
        Fulfilled,
        Failed
    }

    struct Interval {
        Status status;
        bool retryable;
        uint64 requestedAt;
        bytes32 requestId;
    }

    struct Request {
        bytes32 meterId;
        uint64 seq;
    }

    /// @notice What every request sends: set by the admin, never by the requester, so the
    ///         requester cannot point the DON at other code or another server.
    struct RequestConfig {
        uint64 subscriptionId;
        uint32 callbackGasLimit;
        uint32 expireAfter;
        bytes32 donId;
        string baseUrl;
        string source;
        bytes secretsReference;
    }

    AttestationVerifier public immutable verifier;
    RequestConfig private s_config;

    mapping(bytes32 key => Interval) private s_intervals;
    mapping(bytes32 requestId => Request) public requests;

    event RequestConfigSet(
        uint64 subscriptionId, uint32 callbackGasLimit, bytes32 donId, string baseUrl, bytes32 sourceHash
    );
    event IntervalRequested(bytes32 indexed meterId, uint64 indexed seq, bytes32 indexed requestId, string meter);
    event IntervalFulfilled(
        bytes32 indexed meterId, uint64 indexed seq, bytes32 indexed requestId, uint256 mintedMj, uint256 mintedMg
    );
    event IntervalFailed(
        bytes32 indexed meterId, uint64 indexed seq, bytes32 indexed requestId, bytes reason, bool retryable
    );
    event IntervalReopened(bytes32 indexed meterId, uint64 indexed seq);
    /// @notice A fulfilment for a request this contract no longer waits for (expired, reopened).
    event StaleFulfilment(bytes32 indexed requestId);

    error NotConfigured();
    error AlreadyRequested(bytes32 meterId, uint64 seq, Status status);
    error AlreadyVerified(bytes32 meterId, uint64 seq, uint64 lastVerifiedSeq);
    error NotExpired(bytes32 requestId, uint64 expiresAt);
    error NotPending(bytes32 requestId);
    error OnlySelf();
    error BadResponse(uint256 length);
    error ResponseMismatch(uint64 requestedSeq, uint64 respondedSeq);

    constructor(address router, AttestationVerifier verifier_, address admin) FunctionsClient(router) {
        verifier = verifier_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    function setRequestConfig(RequestConfig calldata c) external onlyRole(DEFAULT_ADMIN_ROLE) {
        s_config = c;
        emit RequestConfigSet(c.subscriptionId, c.callbackGasLimit, c.donId, c.baseUrl, keccak256(bytes(c.source)));
    }

    function requestConfig() external view returns (RequestConfig memory) {
        return s_config;
    }

    function intervalOf(string calldata meter, uint64 seq) external view returns (Interval memory) {
        return s_intervals[_key(keccak256(bytes(meter)), seq)];
    }

    /// @notice Ask the DON for attestation `seq` of `meter`; refused if it is pending, done,
    ///         finally failed, or not newer than what the verifier already holds.
    function requestAttestation(string calldata meter, uint64 seq)
        external
        onlyRole(REQUESTER_ROLE)
        returns (bytes32 requestId)
    {
        RequestConfig storage c = s_config;
        if (bytes(c.source).length == 0) revert NotConfigured();
        bytes32 meterId = keccak256(bytes(meter));
        bytes32 key = _key(meterId, seq);
        Interval memory it = s_intervals[key];
        if (it.status == Status.Pending || it.status == Status.Fulfilled || (it.status == Status.Failed && !it.retryable))
        {
            revert AlreadyRequested(meterId, seq, it.status);
        }
        // slither-disable-next-line unused-return
        (uint64 lastSeq,,,,, bool started) = verifier.meterState(meterId);
        if (started && seq <= lastSeq) revert AlreadyVerified(meterId, seq, lastSeq);

        requestId = _sendRequest(_cbor(c, meter, seq), c.subscriptionId, c.callbackGasLimit, c.donId);
        s_intervals[key] = Interval(Status.Pending, false, uint64(block.timestamp), requestId);
        requests[requestId] = Request(meterId, seq);
        emit IntervalRequested(meterId, seq, requestId, meter);
    }

    /// @notice A request the DON never answered (outage past its timeout) becomes retryable.
    function expire(bytes32 requestId) external onlyRole(REQUESTER_ROLE) {
        Request memory q = requests[requestId];
        Interval storage it = s_intervals[_key(q.meterId, q.seq)];
        if (q.meterId == bytes32(0) || it.status != Status.Pending || it.requestId != requestId) {
            revert NotPending(requestId);
        }
        uint64 expiresAt = it.requestedAt + s_config.expireAfter;
        // a DON's clock skew of seconds does not matter against an expiry of minutes
        // slither-disable-next-line timestamp
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp <= expiresAt) revert NotExpired(requestId, expiresAt);
        delete requests[requestId];
        it.status = Status.Failed;
        it.retryable = true;
        emit IntervalFailed(q.meterId, q.seq, requestId, bytes("expired: no fulfilment in time"), true);
    }

    /// @notice Let a finally failed interval be requested again (after its cause was fixed).
    function reopen(string calldata meter, uint64 seq) external onlyRole(DEFAULT_ADMIN_ROLE) {
        bytes32 meterId = keccak256(bytes(meter));
        Interval storage it = s_intervals[_key(meterId, seq)];
        if (it.status != Status.Failed) revert AlreadyRequested(meterId, seq, it.status);
        it.retryable = true;
        emit IntervalReopened(meterId, seq);
    }

    /// @dev Never reverts: the router would only record the revert, the fee is spent anyway,
    ///      and the interval would stay pending for ever. Every outcome is recorded instead.
    function fulfillRequest(bytes32 requestId, bytes memory response, bytes memory err) internal override {
        Request memory q = requests[requestId];
        Interval storage it = s_intervals[_key(q.meterId, q.seq)];
        if (q.meterId == bytes32(0) || it.status != Status.Pending || it.requestId != requestId) {
            emit StaleFulfilment(requestId);
            return;
        }
        delete requests[requestId];
        if (err.length > 0) {
            it.status = Status.Failed;
            it.retryable = true;
            emit IntervalFailed(q.meterId, q.seq, requestId, err, true);
            return;
        }
        // the call goes to this contract's relay, which calls only the immutable verifier (and it
        // its own tokens); the request was deleted above, so even a re-entered fulfilment of
        // this id would only find it stale
        // slither-disable-next-line reentrancy-no-eth
        try this.relay(q.meterId, q.seq, response) returns (uint256 mintedMj, uint256 mintedMg) {
            it.status = Status.Fulfilled;
            emit IntervalFulfilled(q.meterId, q.seq, requestId, mintedMj, mintedMg);
        } catch (bytes memory reason) {
            it.status = Status.Failed;
            emit IntervalFailed(q.meterId, q.seq, requestId, reason, false);
        }
    }

    /// @notice Decode the DON's response and submit it; external only so that the callback can
    ///         catch a malformed response's revert. Callable by this contract alone.
    function relay(bytes32 meterId, uint64 seq, bytes calldata response)
        external
        returns (uint256 mintedMj, uint256 mintedMg)
    {
        if (msg.sender != address(this)) revert OnlySelf();
        if (response.length != RESPONSE_BYTES) revert BadResponse(response.length);
        (uint256 w0, uint256 w1, bytes32 root, bytes32 r, bytes32 s, uint256 v) =
            abi.decode(response, (uint256, uint256, bytes32, bytes32, bytes32, uint256));
        if (w1 >> 160 != 0 || v > type(uint8).max) revert BadResponse(response.length);
        // the packing gives each member exactly its width: the casts cut nothing but the
        // neighbouring members (and v was bounded above)
        // forge-lint: disable-start(unsafe-typecast)
        AttestationVerifier.Attestation memory a = AttestationVerifier.Attestation({
            meterId: meterId,
            seq: uint64(w0 >> 192),
            intervalStart: uint64(w0 >> 128),
            intervalEnd: uint64(w0 >> 64),
            exportMj: uint64(w0),
            importMj: uint64(w1 >> 96),
            firstReadingSeq: uint64(w1 >> 32),
            readingCount: uint32(w1),
            readingsRoot: root
        });
        if (a.seq != seq) revert ResponseMismatch(seq, a.seq);
        return verifier.submit(a, abi.encodePacked(r, s, uint8(v)));
        // forge-lint: disable-end(unsafe-typecast)
    }

    function _cbor(RequestConfig storage c, string calldata meter, uint64 seq) private view returns (bytes memory) {
        // Chainlink's idiom: a zero request that initializeRequestForInlineJavaScript fills in
        // slither-disable-next-line uninitialized-local
        FunctionsRequest.Request memory req;
        req.initializeRequestForInlineJavaScript(c.source);
        string[] memory args = new string[](3);
        args[0] = c.baseUrl;
        args[1] = meter;
        args[2] = Strings.toString(seq);
        req.setArgs(args);
        if (c.secretsReference.length > 0) req.addSecretsReference(c.secretsReference);
        return req.encodeCBOR();
    }

    function _key(bytes32 meterId, uint64 seq) private pure returns (bytes32) {
        return keccak256(abi.encode(meterId, seq));
    }
}
