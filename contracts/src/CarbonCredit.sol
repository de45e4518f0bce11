// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {AggregatorV3Interface} from
    "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface.sol";

/// @title Avoided-emissions credit "aC": one base unit is 1 mg CO2e, decimals 9 (1.0 aC = 1 t).
/// @notice An ESTIMATE of the emissions the metered solar export avoided: exported energy times
///         the grid zone's emission factor, read from an AggregatorV3Interface feed at mint
///         time. It is not a certified carbon offset: no registry, no additionality or
///         permanence assessment stands behind it. Retiring burns credits for a named
///         beneficiary and records why, so a claim cannot be made twice with the same units.
contract CarbonCredit is ERC20, AccessControl {
    string public constant DISCLAIMER =
        "Avoided-emissions estimate (metered export x grid emission factor), not a certified carbon offset";
    /// @notice May set the emission factor feed of a grid zone.
    bytes32 public constant FACTOR_ADMIN_ROLE = keccak256("FACTOR_ADMIN_ROLE");
    /// @notice 1 kWh in mJ divided by the 1000 mg in a gram: mg = mJ * g/kWh / 3.6e6.
    uint256 public constant MJ_PER_KWH_PER_MG_PER_G = 3_600_000;
    /// @notice No grid emits more than this (g CO2e/kWh; lignite ~1,100-1,300): a feed above
    ///         it is treated as broken rather than minting a windfall.
    uint256 public constant MAX_FACTOR_G_PER_KWH = 2_000;

    /// @notice The AttestationVerifier (the deployer): the only account that can mint.
    address public immutable minter;

    struct Zone {
        AggregatorV3Interface feed; // answer: g CO2e per kWh, scaled by 10^feed.decimals()
        uint32 maxAge; // seconds a feed answer stays usable
        bytes32 sourceHash; // hash of the dataset the factor comes from
        string source; // who publishes the factor, which dataset and year
    }

    struct Retirement {
        address retiree;
        uint64 at;
        uint256 amount;
        string beneficiary;
        string reason;
    }

    mapping(bytes32 zone => Zone) private _zones;
    Retirement[] private _retirements;
    /// @notice All aC ever retired (burnt), in mg CO2e.
    uint256 public totalRetired;

    event ZoneFactorSet(
        bytes32 indexed zone, address indexed feed, uint32 maxAge, string source, bytes32 sourceHash
    );
    event CreditMinted(
        address indexed to, bytes32 indexed zone, uint256 energyMj, uint256 mg, uint80 roundId, int256 factor
    );
    event Retired(
        uint256 indexed id, address indexed retiree, uint256 amount, string beneficiary, string reason
    );

    error NotMinter(address caller);
    error UnknownGridZone(bytes32 zone);
    error StaleEmissionFactor(bytes32 zone, uint256 updatedAt, uint256 maxAge);
    error EmissionFactorOutOfRange(bytes32 zone, int256 answer);
    error InvalidFeed(address feed);
    error EmptyBeneficiary();
    error NothingToRetire();
    error UnknownRetirement(uint256 id);

    constructor(address admin) ERC20("Open Metering Avoided CO2e (estimate, not an offset)", "aC") {
        minter = msg.sender;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(FACTOR_ADMIN_ROLE, admin);
    }

    function decimals() public pure override returns (uint8) {
        return 9;
    }

    /// @notice Point a grid zone at its emission factor feed, naming and hashing the source.
    function setZoneFactor(
        bytes32 id,
        AggregatorV3Interface feed,
        uint32 maxAge,
        string calldata source,
        bytes32 sourceHash
    ) external onlyRole(FACTOR_ADMIN_ROLE) {
        if (address(feed).code.length == 0 || feed.decimals() > 18 || maxAge == 0) {
            revert InvalidFeed(address(feed));
        }
        _zones[id] = Zone(feed, maxAge, sourceHash, source);
        emit ZoneFactorSet(id, address(feed), maxAge, source, sourceHash);
    }

    function zoneOf(bytes32 id) external view returns (Zone memory) {
        return _zones[id];
    }

    /// @notice The zone's current factor: (answer, feed decimals, round id); reverts when the
    ///         zone has no feed, the answer is stale, not positive or implausibly large.
    function emissionFactor(bytes32 id) public view returns (int256 answer, uint8 dec, uint80 roundId) {
        Zone storage z = _zones[id];
        if (address(z.feed) == address(0)) revert UnknownGridZone(id);
        uint256 updatedAt;
        // startedAt and answeredInRound are deprecated in AggregatorV3Interface; updatedAt is
        // what tells a stale answer
        // slither-disable-next-line unused-return
        (roundId, answer,, updatedAt,) = z.feed.latestRoundData();
        // a feed's age is judged in hours and days: validators' seconds of leeway do not matter
        // slither-disable-start timestamp
        // forge-lint: disable-next-line(block-timestamp)
        if (updatedAt == 0 || updatedAt > block.timestamp || block.timestamp - updatedAt > z.maxAge) {
            revert StaleEmissionFactor(id, updatedAt, z.maxAge);
        }
        // slither-disable-end timestamp
        dec = z.feed.decimals();
        // casting to uint256 is safe: answer > 0 is checked first
        // forge-lint: disable-next-line(unsafe-typecast)
        if (answer <= 0 || uint256(answer) > MAX_FACTOR_G_PER_KWH * 10 ** dec) {
            revert EmissionFactorOutOfRange(id, answer);
        }
    }

    /// @notice mg CO2e credited for `energyMj` exported in zone `id` at the current factor.
    function creditFor(bytes32 id, uint256 energyMj) public view returns (uint256 mg, uint80 roundId) {
        (mg, roundId,) = _credit(id, energyMj);
    }

    /// @notice Mint the credit for a verified energy delta (verifier only, same transaction as
    ///         the mJ). Rounds down: never credits more than the factor gives.
    function mintForEnergy(address to, bytes32 id, uint256 energyMj) external returns (uint256 mg) {
        if (msg.sender != minter) revert NotMinter(msg.sender);
        uint80 roundId;
        int256 answer;
        (mg, roundId, answer) = _credit(id, energyMj);
        emit CreditMinted(to, id, energyMj, mg, roundId, answer);
        if (mg > 0) _mint(to, mg);
    }

    function _credit(bytes32 id, uint256 energyMj)
        private
        view
        returns (uint256 mg, uint80 roundId, int256 answer)
    {
        uint8 dec;
        (answer, dec, roundId) = emissionFactor(id);
        // casting to uint256 is safe: emissionFactor reverts unless answer > 0
        // forge-lint: disable-next-line(unsafe-typecast)
        mg = Math.mulDiv(energyMj, uint256(answer), MJ_PER_KWH_PER_MG_PER_G * 10 ** dec);
    }

    /// @notice Burn `amount` of your aC for `beneficiary`, saying why; returns the record id.
    function retire(uint256 amount, string calldata beneficiary, string calldata reason)
        external
        returns (uint256 id)
    {
        if (amount == 0) revert NothingToRetire();
        if (bytes(beneficiary).length == 0) revert EmptyBeneficiary();
        _burn(msg.sender, amount);
        id = _retirements.length;
        // casting to uint64 is safe: block timestamps fit 64 bits for 584 billion years
        // forge-lint: disable-next-line(unsafe-typecast)
        _retirements.push(Retirement(msg.sender, uint64(block.timestamp), amount, beneficiary, reason));
        totalRetired += amount;
        emit Retired(id, msg.sender, amount, beneficiary, reason);
    }

    function retirementCount() external view returns (uint256) {
        return _retirements.length;
    }

    function retirement(uint256 id) external view returns (Retirement memory) {
        // slither-disable-next-line timestamp (an index bound, not a time comparison)
        if (id >= _retirements.length) revert UnknownRetirement(id);
        return _retirements[id];
    }
}
