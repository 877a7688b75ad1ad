// The config loader on arbitrary TOML text, read as a broker config.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "broker_config.hpp"
#include "courier/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    (void)courier::broker::BrokerConfig::Read(courier::ConfigSection::Parse(text, "fuzz.toml"));
  } catch (const courier::Error&) {
  }
  return 0;
}
