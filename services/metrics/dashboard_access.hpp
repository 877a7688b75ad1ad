// dashboard_access.hpp — who may read the dashboard and who may change something through it.
//
//   DashboardAccess access(DashboardAccess::Options{.bind_host = "127.0.0.1"});
//   if (auto refusal = access.CheckRead(request)) { ...answer refusal->status... }
//   if (auto refusal = access.CheckWrite(request)) { ... }   // replay, payload reveal
//
// Rules:
// - Bound to a loopback address (127.0.0.0/8, ::1, localhost) the dashboard may run without
//   a token file: reads are open to this machine, but the Host header must name a loopback
//   host, so a page of another site cannot reach it by rebinding its DNS name to 127.0.0.1.
// - Bound to any other address it needs a token file (mode 0600 or stricter, checked at
//   start); every request must then carry the token, as the `courier_token` cookie (set by
//   POST /login) or as `Authorization: Bearer TOKEN`.
// - A state-changing request (and the reveal of a payload) must also carry the token in an
//   `X-Courier-Token` header and come from the dashboard's own origin: its Origin header
//   (or, without one, Sec-Fetch-Site: same-origin) must match its Host. Without a token
//   file the token is a random one made at start; pages carry it in a <meta> tag, which
//   another origin cannot read. The custom header also forces a CORS preflight, which the
//   dashboard never grants.
// Tokens are compared in constant time. Thread-safety: const members are safe from any thread.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace httplib {
struct Request;
}

namespace courier::metrics {

// Returns: whether `host` (a hostname or IP literal, brackets allowed) is a loopback name.
bool IsLoopbackHost(std::string_view host);

// Returns: the token in `path` (surrounding whitespace trimmed).
// Throws: Error(kConfig) if the file is missing, readable or writable by group or others,
// empty, or shorter than 16 characters.
std::string LoadTokenFile(const std::filesystem::path& path);

// Returns: whether `a` equals `b`, in time that depends only on their lengths.
bool SameToken(std::string_view a, std::string_view b);

struct AccessRefusal {
  int status = 403;  // 401: no or wrong token; 403: wrong host or origin
  std::string reason;
};

class DashboardAccess {
 public:
  struct Options {
    std::string bind_host = "127.0.0.1";  // the address the dashboard listens on
    std::filesystem::path token_file;     // "" = none (only allowed on loopback)
  };

  // Throws: Error(kConfig) for a non-loopback address without a token file, or a bad file.
  explicit DashboardAccess(const Options& options);

  // Returns: why `request` may not read, or nullopt when it may.
  std::optional<AccessRefusal> CheckRead(const httplib::Request& request) const;
  // Returns: why `request` may not change state, or nullopt when it may (includes CheckRead).
  std::optional<AccessRefusal> CheckWrite(const httplib::Request& request) const;
  // Returns: whether `candidate` is the token (for POST /login).
  bool Accepts(std::string_view candidate) const { return SameToken(candidate, token_); }

  // The token pages embed for their state-changing requests.
  const std::string& token() const { return token_; }
  // Whether reads need the token (a token file was given).
  bool login_required() const { return login_required_; }
  bool loopback() const { return loopback_; }

 private:
  bool loopback_ = true;
  bool login_required_ = false;
  std::string token_;
};

}  // namespace courier::metrics
