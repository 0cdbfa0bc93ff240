# SPDX-License-Identifier: MIT
# The echo interface of capnp_echo: one Data field each way, the least
# framing a Cap'n Proto two-party RPC call allows, to compare with a zcrpc
# RPC_RR call (and with echo.proto for gRPC).
@0xb563306d8aa55531;

interface Echo {
  call @0 (data :Data) -> (data :Data);
}
