// http_address.hpp — the HOST:PORT form the /metrics servers take (courier-broker's
// `http`, courier-metrics' `http`): "127.0.0.1:9465", "[::1]:9465", "0.0.0.0:0" (port 0:
// any free port; the server logs the one it got).
// Thread-safety: plain functions.
#pragma once

#include <string>
#include <string_view>

namespace courier::prometheus {

struct HttpAddress {
  std::string host;  // without brackets
  int port = 0;      // 0..65535
};

// Returns: `text` parsed. Throws: Error(kConfig) "expected HOST:PORT, got ..." or "bad port
// in ..." (callers add which setting it was).
HttpAddress ParseHttpAddress(std::string_view text);
// Returns: HOST:PORT again, with brackets around an IPv6 host.
std::string FormatHttpAddress(const std::string& host, int port);

}  // namespace courier::prometheus
