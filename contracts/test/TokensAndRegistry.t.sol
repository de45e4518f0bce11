// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {AggregatorV3Interface} from
    "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface.sol";

import {CarbonCredit} from "../src/CarbonCredit.sol";
import {EnergyToken} from "../src/EnergyToken.sol";
import {MeterRegistry} from "../src/MeterRegistry.sol";
import {Base} from "./Base.t.sol";

contract TokensAndRegistryTest is Base {
    function test_nobodyButTheVerifierMints() public {
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(EnergyToken.NotMinter.selector, admin));
        energy.mint(admin, 1);
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(CarbonCredit.NotMinter.selector, admin));
        carbon.mintForEnergy(admin, ZONE, 1e12);
        assertEq(energy.minter(), address(verifier));
        assertEq(carbon.minter(), address(verifier));
    }

    function test_registerValidation() public {
        vm.startPrank(admin);
        vm.expectRevert(MeterRegistry.InvalidMeterName.selector);
        registry.register("Meter-01", makeAddr("x"), owner, ZONE, 1);
        vm.expectRevert(MeterRegistry.InvalidMeterName.selector);
        registry.register("-m", makeAddr("x"), owner, ZONE, 1);
        vm.expectRevert(MeterRegistry.InvalidMeterName.selector);
        registry.register("", makeAddr("x"), owner, ZONE, 1);
        vm.expectRevert(MeterRegistry.InvalidMeterName.selector);
        registry.register("m23456789012345678901234567890123", makeAddr("x"), owner, ZONE, 1);
        vm.expectRevert(MeterRegistry.ZeroAddress.selector);
        registry.register("m2", address(0), owner, ZONE, 1);
        vm.expectRevert(MeterRegistry.ZeroRatedPower.selector);
        registry.register("m2", makeAddr("x"), owner, ZONE, 0);
        vm.expectRevert(abi.encodeWithSelector(MeterRegistry.MeterExists.selector, meterId));
        registry.register("meter-01", makeAddr("x"), owner, ZONE, 1);
        vm.expectRevert(abi.encodeWithSelector(MeterRegistry.DeviceInUse.selector, device));
        registry.register("m2", device, owner, ZONE, 1);
        vm.stopPrank();
        assertEq(registry.meterIdOf("meter-01"), keccak256("meter-01"));
        MeterRegistry.Meter memory m = registry.meter(meterId);
        assertEq(m.device, device);
        assertEq(m.owner, owner);
        assertEq(m.ratedPowerW, RATED_W);
        assertEq(m.commissionedAt, T0);
    }

    function test_onlyRegistrarRegistersAndRotates_ownerMayRevoke() public {
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, owner, registry.REGISTRAR_ROLE()));
        vm.prank(owner);
        registry.register("m2", makeAddr("x"), owner, ZONE, 1);
        // the owner cannot swap in a key of their own choosing
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, owner, registry.REGISTRAR_ROLE()));
        vm.prank(owner);
        registry.rotateDevice(meterId, makeAddr("x"));
        address stranger = makeAddr("stranger");
        vm.expectRevert(abi.encodeWithSelector(MeterRegistry.NotOwnerOrRegistrar.selector, meterId, stranger));
        vm.prank(stranger);
        registry.revoke(meterId, "no");
        vm.expectRevert(abi.encodeWithSelector(MeterRegistry.NotOwnerOrRegistrar.selector, meterId, stranger));
        vm.prank(stranger);
        registry.transferMeter(meterId, stranger);
        vm.expectEmit(address(registry));
        emit MeterRegistry.MeterRevoked(meterId, owner, "replaced");
        vm.prank(owner);
        registry.revoke(meterId, "replaced");
        vm.expectRevert(abi.encodeWithSelector(MeterRegistry.MeterIsRevoked.selector, meterId));
        vm.prank(admin);
        registry.rotateDevice(meterId, makeAddr("x"));
    }

    function test_creditRoundsDownAndUsesFeed() public view {
        (uint256 mg, uint80 round) = carbon.creditFor(ZONE, 3_600_000_000); // 1 kWh
        assertEq(mg, 380_000); // 380 g
        assertEq(round, 1);
        (mg,) = carbon.creditFor(ZONE, 9_473); // 0.0099997 mg
        assertEq(mg, 0);
    }

    function test_staleNegativeAndHugeFactorsRefused() public {
        vm.warp(T0 + 401 days);
        vm.expectRevert(abi.encodeWithSelector(CarbonCredit.StaleEmissionFactor.selector, ZONE, T0, uint256(400 days)));
        carbon.creditFor(ZONE, 1);
        feed.updateAnswer(-1);
        vm.expectRevert(abi.encodeWithSelector(CarbonCredit.EmissionFactorOutOfRange.selector, ZONE, int256(-1)));
        carbon.creditFor(ZONE, 1);
        feed.updateAnswer(2001e8);
        vm.expectRevert(abi.encodeWithSelector(CarbonCredit.EmissionFactorOutOfRange.selector, ZONE, int256(2001e8)));
        carbon.creditFor(ZONE, 1);
        vm.expectRevert(abi.encodeWithSelector(CarbonCredit.UnknownGridZone.selector, bytes32("FR")));
        carbon.creditFor("FR", 1);
    }

    function test_zoneFactorAdminOnlyAndChecked() public {
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, owner, carbon.FACTOR_ADMIN_ROLE()));
        vm.prank(owner);
        carbon.setZoneFactor("FR", feed, 1 days, "x", bytes32(0));
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(CarbonCredit.InvalidFeed.selector, owner));
        carbon.setZoneFactor("FR", AggregatorV3Interface(owner), 1 days, "x", bytes32(0));
        vm.expectEmit(address(carbon));
        emit CarbonCredit.ZoneFactorSet("FR", address(feed), 1 days, "RTE eCO2mix 2024", keccak256("csv"));
        vm.prank(admin);
        carbon.setZoneFactor("FR", feed, 1 days, "RTE eCO2mix 2024", keccak256("csv"));
        CarbonCredit.Zone memory z = carbon.zoneOf("FR");
        assertEq(z.source, "RTE eCO2mix 2024");
        assertEq(z.sourceHash, keccak256("csv"));
    }

    function test_retireBurnsAndRecords() public {
        vm.warp(T0 + 1 days);
        submit(att(1, slot(0), 0));
        submit(att(2, slot(1), 3_600_000_000)); // 1 kWh -> 380 g
        assertEq(carbon.balanceOf(owner), 380_000);
        vm.expectRevert(CarbonCredit.EmptyBeneficiary.selector);
        vm.prank(owner);
        carbon.retire(1, "", "x");
        vm.expectRevert(CarbonCredit.NothingToRetire.selector);
        vm.prank(owner);
        carbon.retire(0, "Alice", "x");
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, owner, 380_000, 380_001));
        vm.prank(owner);
        carbon.retire(380_001, "Alice", "x");
        vm.expectEmit(address(carbon));
        emit CarbonCredit.Retired(0, owner, 100_000, "Alice Example", "2026 household electricity");
        vm.prank(owner);
        uint256 id = carbon.retire(100_000, "Alice Example", "2026 household electricity");
        assertEq(id, 0);
        assertEq(carbon.balanceOf(owner), 280_000);
        assertEq(carbon.totalSupply(), 280_000);
        assertEq(carbon.totalRetired(), 100_000);
        CarbonCredit.Retirement memory r = carbon.retirement(0);
        assertEq(r.retiree, owner);
        assertEq(r.beneficiary, "Alice Example");
        assertEq(r.amount, 100_000);
        assertEq(carbon.retirementCount(), 1);
        vm.expectRevert(abi.encodeWithSelector(CarbonCredit.UnknownRetirement.selector, 1));
        carbon.retirement(1);
    }

    function test_disclaimer() public view {
        assertEq(carbon.DISCLAIMER(), "Avoided-emissions estimate (metered export x grid emission factor), not a certified carbon offset");
    }
}
