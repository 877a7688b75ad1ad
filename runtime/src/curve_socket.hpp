// curve_socket.hpp — makes a socket a CURVE client of a broker (header-only; internal).
// Every DEALER a Courier peer opens to a broker goes through ApplyCurve before connect(),
// so CURVE is either on for all of a process's broker sockets or for none.
#pragma once

#include <zmq.hpp>

#include "courier/curve.hpp"
#include "courier/error.hpp"

namespace courier::detail {

// Sets the CURVE client options on `socket` when `curve` is enabled (no-op otherwise).
// Requires: curve.Resolved() was called (keys are loaded). Call before connect().
// Throws: Error(kConfig) if the keys are not loaded; zmq::error_t if libzmq lacks CURVE.
inline void ApplyCurve(zmq::socket_t& socket, const CurveOptions& curve) {
  if (!curve.enabled()) return;
  if (!curve.keys) throw Error(ErrorCode::kConfig, "internal: CURVE keys were not loaded before connecting");
  socket.set(zmq::sockopt::curve_serverkey, curve.server_public_key);
  socket.set(zmq::sockopt::curve_publickey, curve.keys->public_key);
  socket.set(zmq::sockopt::curve_secretkey, curve.keys->secret_key);
}

}  // namespace courier::detail
