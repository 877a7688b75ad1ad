#include "dashboard_access.hpp"

#include <httplib.h>
#include <sys/stat.h>

#include <arpa/inet.h>

#include <cctype>
#include <fstream>
#include <random>
#include <sstream>

#include "courier/error.hpp"

namespace courier::metrics {
namespace {

std::string_view Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return text;
}

// Returns: the host part of a Host header value ("a:1" → "a", "[::1]:2" → "::1").
std::string_view HostOf(std::string_view authority) {
  if (authority.starts_with('[')) {
    const std::size_t close = authority.find(']');
    return close == std::string_view::npos ? authority : authority.substr(1, close - 1);
  }
  const std::size_t colon = authority.find(':');
  return colon == std::string_view::npos ? authority : authority.substr(0, colon);
}

std::string RandomToken() {
  std::random_device device;  // getrandom(2) on Linux
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token;
  for (int i = 0; i < 32; ++i) {
    const unsigned byte = device() & 0xffu;
    token += kHex[byte >> 4];
    token += kHex[byte & 15u];
  }
  return token;
}

std::optional<std::string> CookieValue(const httplib::Request& request, std::string_view name) {
  const std::string header = request.get_header_value("Cookie");
  std::string_view rest = header;
  while (!rest.empty()) {
    const std::size_t semi = rest.find(';');
    std::string_view pair = Trim(rest.substr(0, semi));
    rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
    const std::size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) return std::string(pair.substr(eq + 1));
  }
  return std::nullopt;
}

}  // namespace

bool IsLoopbackHost(std::string_view host) {
  if (host.starts_with('[') && host.ends_with(']')) host = host.substr(1, host.size() - 2);
  if (host == "localhost" || host.ends_with(".localhost")) return true;
  const std::string text(host);
  in_addr v4{};
  if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, text.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

std::string LoadTokenFile(const std::filesystem::path& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    throw Error(ErrorCode::kConfig, "dashboard token file " + path.string() + " cannot be read");
  }
  if ((info.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    throw Error(ErrorCode::kConfig, "dashboard token file " + path.string() +
                                        " is open to group or others; chmod 600 it");
  }
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) throw Error(ErrorCode::kConfig, "dashboard token file " + path.string() + " cannot be read");
  const std::string token(Trim(text.str()));
  if (token.size() < 16) {
    throw Error(ErrorCode::kConfig, "dashboard token file " + path.string() + " holds no token of 16 characters or more");
  }
  return token;
}

bool SameToken(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::size_t n = std::max(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    const auto x = static_cast<unsigned char>(i < a.size() ? a[i] : 0);
    const auto y = static_cast<unsigned char>(i < b.size() ? b[i] : 0);
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

DashboardAccess::DashboardAccess(const Options& options) : loopback_(IsLoopbackHost(options.bind_host)) {
  if (!options.token_file.empty()) {
    token_ = LoadTokenFile(options.token_file);
    login_required_ = true;
  } else if (!loopback_) {
    throw Error(ErrorCode::kConfig, "the dashboard listens on " + options.bind_host +
                                        ", beyond this machine: give it a token file (mode 0600) or bind 127.0.0.1");
  } else {
    token_ = RandomToken();
  }
}

std::optional<AccessRefusal> DashboardAccess::CheckRead(const httplib::Request& request) const {
  const std::string host = request.get_header_value("Host");
  if (host.empty()) return AccessRefusal{403, "no Host header"};
  if (!login_required_ && !IsLoopbackHost(HostOf(host))) {
    return AccessRefusal{403, "the dashboard answers only to a loopback host name without a token"};
  }
  if (!login_required_) return std::nullopt;
  if (const auto cookie = CookieValue(request, "courier_token"); cookie && SameToken(*cookie, token_)) {
    return std::nullopt;
  }
  const std::string authorization = request.get_header_value("Authorization");
  if (authorization.starts_with("Bearer ") && SameToken(Trim(authorization.substr(7)), token_)) return std::nullopt;
  return AccessRefusal{401, "log in with the dashboard token"};
}

std::optional<AccessRefusal> DashboardAccess::CheckWrite(const httplib::Request& request) const {
  if (auto refusal = CheckRead(request)) return refusal;
  const std::string host = request.get_header_value("Host");
  const std::string origin = request.get_header_value("Origin");
  if (!origin.empty()) {
    if (origin != "http://" + host && origin != "https://" + host) {
      return AccessRefusal{403, "cross-origin request refused (Origin " + origin + ")"};
    }
  } else if (request.get_header_value("Sec-Fetch-Site") != "same-origin") {
    return AccessRefusal{403, "a state-changing request needs an Origin header of this dashboard"};
  }
  if (!SameToken(request.get_header_value("X-Courier-Token"), token_)) {
    return AccessRefusal{403, "missing or wrong X-Courier-Token header (reload the page)"};
  }
  return std::nullopt;
}

}  // namespace courier::metrics
