#include "courier/curve.hpp"

#include <zmq.h>

#include <array>
#include <sstream>
#include <toml++/toml.h>

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
  if (std::filesystem::exists(path)) {
    throw Error(ErrorCode::kIo, path.string() + " already exists; refusing to overwrite a key file");
  }
  toml::table table{{"name", pair.name}, {"public", pair.public_key}, {"secret", pair.secret_key}};
  std::ostringstream text;
  text << "# CurveZMQ key pair. Keep it private (mode 0600); share only the public key.\n" << table << "\n";
  detail::WritePrivateFile(path, text.str());
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

std::map<std::string, std::string> LoadCurveAllowList(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) Fail(path, "allow-list does not exist");
  const toml::table table = ParseToml(path);
  std::map<std::string, std::string> keys;
  for (const auto& [name, node] : table) {
    const auto* value = node.as_string();
    const std::string line = std::to_string(node.source().begin.line);
    if (value == nullptr || !IsCurveKey(value->get())) {
      Fail(path, "line " + line + ": '" + std::string(name.str()) + "' must be a 40-character Z85 public key");
    }
    keys.emplace(std::string(name.str()), value->get());
  }
  return keys;
}

}  // namespace courier
