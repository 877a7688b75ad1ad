// The small protocol bodies (error, ready info, credit, reject, query) on arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "courier/error.hpp"
#include "frames.hpp"

namespace {
template <typename F>
void Try(F&& decode) {
  try {
    decode();
  } catch (const courier::Error&) {
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  using namespace courier::detail;
  Try([&] { DecodeErrorBody(bytes); });
  Try([&] { DecodeReadyInfo(bytes); });
  Try([&] { DecodeCredit(bytes); });
  Try([&] { DecodeReject(bytes); });
  Try([&] { DecodeQueryName(bytes); });
  return 0;
}
