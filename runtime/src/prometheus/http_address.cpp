#include "prometheus/http_address.hpp"

#include <charconv>

#include "courier/error.hpp"

namespace courier::prometheus {

HttpAddress ParseHttpAddress(std::string_view text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
    throw Error(ErrorCode::kConfig, "expected HOST:PORT, got \"" + std::string(text) + "\"");
  }
  HttpAddress address;
  address.host = std::string(text.substr(0, colon));
  if (address.host.size() > 2 && address.host.front() == '[' && address.host.back() == ']') {
    address.host = address.host.substr(1, address.host.size() - 2);  // [::1]:9465
  }
  const std::string_view port = text.substr(colon + 1);
  const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), address.port);
  if (error != std::errc{} || end != port.data() + port.size() || address.port < 0 || address.port > 65535) {
    throw Error(ErrorCode::kConfig, "bad port in \"" + std::string(text) + "\"");
  }
  return address;
}

std::string FormatHttpAddress(const std::string& host, int port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

}  // namespace courier::prometheus
