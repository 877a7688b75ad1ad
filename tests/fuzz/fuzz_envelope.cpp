// The envelope decoder on arbitrary bytes: a valid result must re-encode and decode equal.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "courier/error.hpp"
#include "envelope_codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    const auto view = courier::detail::DecodeEnvelope(bytes);
    const std::string encoded = courier::detail::EncodeEnvelope(view.ToEnvelope());
    const auto again = courier::detail::DecodeEnvelope(encoded);
    if (again.job_id != view.job_id || again.service != view.service || again.attempt != view.attempt) {
      __builtin_trap();
    }
  } catch (const courier::Error&) {
  }
  return 0;
}
