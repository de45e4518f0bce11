// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title Registry of meters and the device keys that sign for them.
/// @notice A meter is known by keccak256 of its meter id (the EIP-712 encoding of the string
///         the device signs). The registrar is whoever vouches that a device address belongs to
///         a real meter (installer, operator): only the registrar registers a meter or rotates
///         its key, since a key that is not inside a meter could sign any energy. The owner
///         receives the tokens and may revoke the meter or hand it over; so may the registrar.
contract MeterRegistry is AccessControl {
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");

    struct Meter {
        address device; // address of the meter's secp256k1 key
        uint32 ratedPowerW; // export limit: no interval may claim more than this power
        uint32 epoch; // +1 on every key rotation: the verifier starts a new baseline
        bool revoked;
        address owner; // receives mJ and aC
        uint64 commissionedAt; // registration or last rotation: earlier intervals never count
        bytes32 gridZone; // emission factor zone (CarbonCredit)
    }

    mapping(bytes32 meterId => Meter) private _meters;
    /// @notice The meter a device address signs for (one address, one meter, for ever).
    mapping(address device => bytes32 meterId) public meterOfDevice;

    event MeterRegistered(
        bytes32 indexed meterId,
        address indexed device,
        address indexed owner,
        string name,
        bytes32 gridZone,
        uint32 ratedPowerW,
        uint64 commissionedAt
    );
    event DeviceRotated(
        bytes32 indexed meterId, address indexed oldDevice, address indexed newDevice, uint32 epoch
    );
    event MeterRevoked(bytes32 indexed meterId, address indexed by, string reason);
    event OwnerChanged(bytes32 indexed meterId, address indexed from, address indexed to);

    error MeterExists(bytes32 meterId);
    error UnknownMeter(bytes32 meterId);
    error MeterIsRevoked(bytes32 meterId);
    error DeviceInUse(address device);
    error ZeroAddress();
    error ZeroRatedPower();
    error InvalidMeterName();
    error NotOwnerOrRegistrar(bytes32 meterId, address caller);

    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(REGISTRAR_ROLE, admin);
    }

    /// @notice bytes32 id of a meter id string: keccak256 of its UTF-8 bytes.
    function meterIdOf(string calldata name) public pure returns (bytes32) {
        return keccak256(bytes(name));
    }

    function register(
        string calldata name,
        address device,
        address owner,
        bytes32 gridZone,
        uint32 ratedPowerW
    ) external onlyRole(REGISTRAR_ROLE) returns (bytes32 id) {
        // the meter id pattern of contract/reading.schema.json: 1-32 of [a-z0-9_-]
        bytes memory b = bytes(name);
        if (b.length == 0 || b.length > 32) revert InvalidMeterName();
        for (uint256 i = 0; i < b.length; ++i) {
            bytes1 c = b[i];
            bool ok = (c >= "a" && c <= "z") || (c >= "0" && c <= "9") || (i > 0 && (c == "_" || c == "-"));
            if (!ok) revert InvalidMeterName();
        }
        if (device == address(0) || owner == address(0)) revert ZeroAddress();
        if (ratedPowerW == 0) revert ZeroRatedPower();
        id = keccak256(b);
        if (_meters[id].device != address(0)) revert MeterExists(id);
        _claimDevice(device);
        meterOfDevice[device] = id;
        // casting to uint64 is safe: block timestamps fit 64 bits for 584 billion years
        // forge-lint: disable-next-line(unsafe-typecast)
        uint64 at = uint64(block.timestamp);
        _meters[id] = Meter(device, ratedPowerW, 0, false, owner, at, gridZone);
        emit MeterRegistered(id, device, owner, name, gridZone, ratedPowerW, at);
    }

    /// @notice New device key for a meter (replacement board, key compromise). The verifier
    ///         then takes the new device's first attestation as a fresh baseline.
    function rotateDevice(bytes32 id, address newDevice) external onlyRole(REGISTRAR_ROLE) {
        Meter storage m = _live(id);
        if (newDevice == address(0)) revert ZeroAddress();
        _claimDevice(newDevice);
        meterOfDevice[newDevice] = id;
        address old = m.device;
        m.device = newDevice;
        m.epoch += 1;
        // forge-lint: disable-next-line(unsafe-typecast)
        m.commissionedAt = uint64(block.timestamp);
        emit DeviceRotated(id, old, newDevice, m.epoch);
    }

    /// @notice Stop a meter for good: nothing it signs mints any more.
    function revoke(bytes32 id, string calldata reason) external {
        Meter storage m = _live(id);
        _onlyOwnerOrRegistrar(id, m);
        m.revoked = true;
        emit MeterRevoked(id, msg.sender, reason);
    }

    function transferMeter(bytes32 id, address newOwner) external {
        Meter storage m = _live(id);
        _onlyOwnerOrRegistrar(id, m);
        if (newOwner == address(0)) revert ZeroAddress();
        emit OwnerChanged(id, m.owner, newOwner);
        m.owner = newOwner;
    }

    function meter(bytes32 id) external view returns (Meter memory) {
        return _meters[id];
    }

    function _live(bytes32 id) private view returns (Meter storage m) {
        m = _meters[id];
        if (m.device == address(0)) revert UnknownMeter(id);
        if (m.revoked) revert MeterIsRevoked(id);
    }

    function _claimDevice(address device) private view {
        // an address once used stays used: an old key must never sign for another meter
        if (meterOfDevice[device] != bytes32(0)) revert DeviceInUse(device);
    }

    function _onlyOwnerOrRegistrar(bytes32 id, Meter storage m) private view {
        if (msg.sender != m.owner && !hasRole(REGISTRAR_ROLE, msg.sender)) {
            revert NotOwnerOrRegistrar(id, msg.sender);
        }
    }
}
