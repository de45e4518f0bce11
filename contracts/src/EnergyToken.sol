// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title Energy token "mJ": one base unit is one millijoule of exported energy.
/// @notice Decimals are 0, so the displayed figure is millijoules, as the symbol says
///         (1 kWh = 3 600 000 000 mJ). Tokens exist only for energy a registered meter signed:
///         the one minter is the AttestationVerifier that deployed this contract, fixed for
///         ever, so no admin key can mint.
contract EnergyToken is ERC20 {
    /// @notice The AttestationVerifier (the deployer): the only account that can mint.
    address public immutable minter;

    error NotMinter(address caller);

    constructor() ERC20("Open Metering Energy (exported millijoules)", "mJ") {
        minter = msg.sender;
    }

    function decimals() public pure override returns (uint8) {
        return 0;
    }

    /// @notice Mint `amount` mJ to `to`; only the verifier, only for a verified counter delta.
    function mint(address to, uint256 amount) external {
        if (msg.sender != minter) revert NotMinter(msg.sender);
        _mint(to, amount);
    }
}
