// The payload decoder (msgpack-c behind limits) on arbitrary bytes, then JSON both ways.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "courier/error.hpp"
#include "courier/value.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  courier::DecodeLimits limits;
  limits.max_bytes = 1 << 16;
  try {
    const courier::Value value = courier::DecodeValue(bytes, limits);
    // Compare encodings, not values: NaN != NaN, and float32 widens to float64 once.
    const std::string encoded = courier::EncodeValue(value);
    if (courier::EncodeValue(courier::DecodeValue(encoded, limits)) != encoded) __builtin_trap();
    (void)courier::FromJson(courier::ToJson(value));
  } catch (const courier::Error&) {
  }
  try {
    (void)courier::FromJson(bytes);
  } catch (const courier::Error&) {
  }
  return 0;
}
