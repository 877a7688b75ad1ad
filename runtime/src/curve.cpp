#include "courier/curve.hpp"

#include <zmq.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <sstream>
#include <toml++/toml.h>

#include "courier/config.hpp"
#include "courier/error.hpp"
#include "private_file.hpp"

namespace courier {
namespace {

[[noreturn]] void Fail(const std::filesystem::path& path, const std::string& why) {
  throw Error(ErrorCode::kConfig, "curve key file " + path.string() + ": " + why);
}

toml::table ParseToml(const std::filesystem::path& path) {
  try {
    return toml::parse_file(path.string());
  } catch (const toml::parse_error& error) {
    Fail(path, "line " + std::to_string(error.source().begin.line) + ": " + std::string(error.description()));
  }
}

std::string TrimText(std::string_view text) {
  const auto begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) return {};
  const auto end = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(begin, end - begin + 1));
}

// Paths in a TOML file are relative to the file's directory.
std::filesystem::path RelativeTo(const ConfigSection& section, const std::string& path) {
  std::filesystem::path result(path);
  std::error_code error;
  if (result.is_relative() && std::filesystem::is_regular_file(section.source(), error)) {
    result = std::filesystem::path(section.source()).parent_path() / result;
  }
  return result;
}

}  // namespace

bool IsCurveKey(const std::string& key) {
  std::array<std::uint8_t, 32> raw{};
  return key.size() == 40 && zmq_z85_decode(raw.data(), key.c_str()) != nullptr;
}

CurveKeyPair GenerateCurveKeyPair(std::string name) {
  if (zmq_has("curve") == 0) throw Error(ErrorCode::kInternal, "this libzmq was built without CURVE");
  char public_key[41] = {};
  char secret_key[41] = {};
  if (zmq_curve_keypair(public_key, secret_key) != 0) {
    throw Error(ErrorCode::kInternal, "zmq_curve_keypair failed");
  }
  return CurveKeyPair{std::move(name), public_key, secret_key};
}

void SaveCurveKeyPair(const std::filesystem::path& path, const CurveKeyPair& pair) {
  toml::table table{{"name", pair.name}, {"public", pair.public_key}, {"secret", pair.secret_key}};
  std::ostringstream text;
  text << "# CurveZMQ key pair. Keep it private (mode 0600); share only the public key.\n" << table << "\n";
  // Never replaces a file, even one another process creates at the same moment.
  if (!detail::CreatePrivateFile(path, text.str())) {
    throw Error(ErrorCode::kIo, path.string() + " already exists; refusing to overwrite a key file");
  }
}

CurveKeyPair LoadCurveKeyPair(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) Fail(path, "does not exist (create one with `courier keygen --curve`)");
  detail::CheckPrivateFile(path, "curve key file");
  const toml::table table = ParseToml(path);
  for (const auto& [key, value] : table) {
    if (key != "name" && key != "public" && key != "secret") Fail(path, "unknown key '" + std::string(key.str()) + "'");
  }
  CurveKeyPair pair;
  pair.name = table["name"].value_or(std::string{});
  pair.public_key = table["public"].value_or(std::string{});
  pair.secret_key = table["secret"].value_or(std::string{});
  if (!IsCurveKey(pair.public_key)) Fail(path, "'public' must be a 40-character Z85 key");
  if (!IsCurveKey(pair.secret_key)) Fail(path, "'secret' must be a 40-character Z85 key");
  char derived[41] = {};
  if (zmq_curve_public(derived, pair.secret_key.c_str()) != 0 || pair.public_key != derived) {
    Fail(path, "'public' does not belong to 'secret'");
  }
  return pair;
}

bool CurveServiceMatches(std::string_view pattern, std::string_view name) {
  if (pattern.size() > 2 && pattern.ends_with(".*")) {
    const std::string_view prefix = pattern.substr(0, pattern.size() - 1);  // keeps the dot
    return name.size() > prefix.size() && name.starts_with(prefix);
  }
  return pattern == name;
}

std::vector<CurveAllowEntry> LoadCurveAllowEntries(const std::filesystem::path& path, CurveRole file_role) {
  if (!std::filesystem::exists(path)) Fail(path, "allow-list does not exist");
  const toml::table table = ParseToml(path);
  std::vector<CurveAllowEntry> entries;
  for (const auto& [name_key, node] : table) {
    const std::string name(name_key.str());
    const std::string where = "line " + std::to_string(node.source().begin.line) + ": '" + name + "'";
    CurveAllowEntry entry{.name = name, .public_key = {}, .role = file_role, .services = {}, .max_capacity = 0};
    if (const auto* value = node.as_string()) {
      entry.public_key = value->get();
    } else if (const auto* fields = node.as_table()) {
      for (const auto& [field, field_node] : *fields) {
        const std::string_view key = field.str();
        if (key == "key") {
          entry.public_key = field_node.value_or(std::string{});
        } else if (key == "role") {
          const std::string role = field_node.value_or(std::string{});
          if (role == "client" && file_role == CurveRole::kClient) {
            entry.role = CurveRole::kClient;
          } else if (role == "operator" && file_role == CurveRole::kClient) {
            entry.role = CurveRole::kOperator;
          } else if (role == "worker" && file_role == CurveRole::kWorker) {
            entry.role = CurveRole::kWorker;
          } else {
            Fail(path, where + ": role must be " +
                           (file_role == CurveRole::kWorker ? std::string("\"worker\" in a workers allow-list")
                                                            : std::string("\"client\" or \"operator\" in a clients "
                                                                          "allow-list")));
          }
        } else if (key == "services" && file_role == CurveRole::kWorker) {
          const auto* list = field_node.as_array();
          if (list == nullptr) Fail(path, where + ": services must be a list of service names");
          for (const auto& item : *list) {
            const auto pattern = item.value<std::string>();
            if (!pattern || pattern->empty() || *pattern == "*" || *pattern == ".*" ||
                pattern->find('*') < pattern->size() - 1 || (pattern->ends_with("*") && !pattern->ends_with(".*"))) {
              Fail(path, where + ": services holds names or \"prefix.*\" patterns");
            }
            entry.services.push_back(*pattern);
          }
        } else if (key == "max_capacity" && file_role == CurveRole::kWorker) {
          const auto cap = field_node.value<std::int64_t>();
          if (!cap || *cap < 1 || *cap > 1000000) Fail(path, where + ": max_capacity must be 1..1000000");
          entry.max_capacity = static_cast<std::uint32_t>(*cap);
        } else {
          Fail(path, where + ": unknown key '" + std::string(key) + "' (key, role" +
                         (file_role == CurveRole::kWorker ? ", services, max_capacity" : "") + ")");
        }
      }
    } else {
      Fail(path, where + " must be a 40-character Z85 public key or a table { key = \"...\", ... }");
    }
    if (!IsCurveKey(entry.public_key)) Fail(path, where + " must be a 40-character Z85 public key");
    entries.push_back(std::move(entry));
  }
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return entries;
}

std::map<std::string, std::string> LoadCurveAllowList(const std::filesystem::path& path) {
  // Either file's entries: the role checks are LoadCurveAllowEntries' with the file's role;
  // here a role of either kind is accepted.
  std::map<std::string, std::string> keys;
  if (!std::filesystem::exists(path)) Fail(path, "allow-list does not exist");
  const toml::table table = ParseToml(path);
  bool workers = false;
  for (const auto& [name, node] : table) {
    if (const auto* fields = node.as_table()) {
      const std::string role = (*fields)["role"].value_or(std::string{});
      if (role == "worker" || fields->contains("services") || fields->contains("max_capacity")) workers = true;
    }
  }
  for (auto& entry : LoadCurveAllowEntries(path, workers ? CurveRole::kWorker : CurveRole::kClient)) {
    keys.emplace(std::move(entry.name), std::move(entry.public_key));
  }
  return keys;
}

std::string LoadCurvePublicKey(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) Fail(path, "cannot be read (expected the broker's public key)");
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().size() > 64 * 1024) Fail(path, "too large for a public key file");
  const std::string trimmed = TrimText(text.str());
  if (IsCurveKey(trimmed)) return trimmed;
  try {
    const toml::table table = toml::parse(text.str(), path.string());
    if (const auto key = table["public"].value<std::string>(); key && IsCurveKey(*key)) return *key;
  } catch (const toml::parse_error&) {
    // Neither a bare key nor TOML: reported below.
  }
  Fail(path, "holds no public key (expected 40 Z85 characters, or public = \"...\")");
}

std::string ResolveCurvePublicKey(const std::string& key_or_file) {
  if (IsCurveKey(key_or_file)) return key_or_file;
  if (key_or_file.size() == 40 && !std::filesystem::exists(key_or_file)) {
    throw Error(ErrorCode::kConfig, "curve server key '" + key_or_file + "' is not a valid Z85 key");
  }
  return LoadCurvePublicKey(key_or_file);
}

CurveOptions CurveOptions::Resolved() const {
  if (!enabled()) {
    if (keys || !key_file.empty()) {
      throw Error(ErrorCode::kConfig,
                  "a CURVE key pair is given but not the broker's public key: set server_key (or "
                  "server_key_file) in [security], or pass --curve-server-key");
    }
    return *this;
  }
  if (!IsCurveKey(server_public_key)) {
    throw Error(ErrorCode::kConfig, "curve server key must be 40 Z85 characters (the broker's public key)");
  }
  CurveOptions resolved = *this;
  if (!resolved.keys) {
    if (key_file.empty()) {
      throw Error(ErrorCode::kConfig,
                  "CURVE is on but no key pair is given: set key_file in [security] or pass --curve-key "
                  "(create one with `courier keygen --curve`)");
    }
    resolved.keys = LoadCurveKeyPair(key_file);
  } else if (!IsCurveKey(resolved.keys->public_key) || !IsCurveKey(resolved.keys->secret_key)) {
    throw Error(ErrorCode::kConfig, "curve key pair '" + resolved.keys->name + "' holds malformed keys");
  }
  return resolved;
}

CurveOptions CurveOptions::FromConfig(const ConfigSection& security) {
  CurveOptions options;
  const bool on = security.GetBool("curve", false);
  const auto server_key = security.GetOptionalString("server_key");
  const auto server_key_file = security.GetOptionalString("server_key_file");
  const auto key_file = security.GetOptionalString("key_file");
  security.RejectUnknownKeys();
  if (!on) return options;
  if (server_key && server_key_file) {
    throw Error(ErrorCode::kConfig, security.Describe("server_key", "give server_key or server_key_file, not both"));
  }
  if (!server_key && !server_key_file) {
    throw Error(ErrorCode::kConfig,
                security.Describe("curve", "curve = true needs server_key or server_key_file (the broker's public key)"));
  }
  if (!key_file || key_file->empty()) {
    throw Error(ErrorCode::kConfig,
                security.Describe("curve", "curve = true needs key_file (this peer's key pair, `courier keygen --curve`)"));
  }
  if (server_key) {
    if (!IsCurveKey(*server_key)) {
      throw Error(ErrorCode::kConfig, security.Describe("server_key", "must be a 40-character Z85 public key"));
    }
    options.server_public_key = *server_key;
  } else {
    options.server_public_key = LoadCurvePublicKey(RelativeTo(security, *server_key_file));
  }
  options.key_file = RelativeTo(security, *key_file);
  return options;
}

}  // namespace courier
