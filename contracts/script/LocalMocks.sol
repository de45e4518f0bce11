// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

// The local chain's emission-factor feed is Chainlink's own MockV3Aggregator. Only the tests
// import it otherwise, and `omd chain build` skips the tests, so this import is what puts its
// artifact into contracts/out for the deploy step (dev chains only: never deployed elsewhere).
import {MockV3Aggregator} from "@chainlink/contracts/src/v0.8/shared/mocks/MockV3Aggregator.sol";
