#include "reports.hpp"

#include <unistd.h>

#include <msgpack.hpp>

#include "envelope_codec.hpp"

namespace courier::broker {
namespace {

struct StringStream {
  std::string& out;
  void write(const char* data, std::size_t size) { out.append(data, size); }
};
using Packer = msgpack::packer<StringStream>;

void Str(Packer& packer, std::string_view text) {
  packer.pack_str(static_cast<std::uint32_t>(text.size()));
  packer.pack_str_body(text.data(), static_cast<std::uint32_t>(text.size()));
}

void Bin(Packer& packer, std::string_view bytes) {
  packer.pack_bin(static_cast<std::uint32_t>(bytes.size()));
  packer.pack_bin_body(bytes.data(), static_cast<std::uint32_t>(bytes.size()));
}

std::string HostName() {
  char name[256] = {};
  ::gethostname(name, sizeof name - 1);
  return name;
}

}  // namespace

std::string EncodeDeadLetterReport(const DeadLetterInput& input) {
  std::string trace_id;
  try {
    const auto view = detail::DecodeEnvelope(input.envelope);
    if (std::any_of(view.trace_id.begin(), view.trace_id.end(), [](auto b) { return b != 0; })) {
      trace_id.assign(reinterpret_cast<const char*>(view.trace_id.data()), view.trace_id.size());
    }
  } catch (const std::exception&) {
    // The envelope was validated on arrival; a failure here only loses the trace id.
  }
  static const std::string host = HostName();
  std::string out;
  StringStream stream{out};
  Packer packer(stream);
  packer.pack_map(2);
  Str(packer, "reports");
  packer.pack_array(1);
  packer.pack_map(16);
  Str(packer, "time_ms"), packer.pack_uint64(input.time_ms);
  Str(packer, "service"), Str(packer, input.service);
  Str(packer, "job_id"), Bin(packer, input.job_id.View());
  Str(packer, "attempt"), packer.pack_uint32(input.attempt);
  Str(packer, "max_attempts"), packer.pack_uint32(input.max_attempts);
  Str(packer, "reporter"), Str(packer, "broker");
  Str(packer, "host"), Str(packer, host);
  Str(packer, "pid"), packer.pack_uint64(static_cast<std::uint64_t>(::getpid()));
  Str(packer, "instance"), Str(packer, "");
  Str(packer, "stage"), Str(packer, "deliver");
  Str(packer, "code"), packer.pack_uint16(static_cast<std::uint16_t>(input.code));
  Str(packer, "message"), Str(packer, input.message);
  Str(packer, "trace_id"), Bin(packer, trace_id);
  Str(packer, "sender"), Str(packer, "");
  Str(packer, "envelope"), Bin(packer, input.envelope);
  Str(packer, "payload"), Bin(packer, input.payload);
  Str(packer, "dropped");
  packer.pack_uint64(0);
  return out;
}

std::string EncodeQueryFailure(ErrorCode code, std::string_view message) {
  std::string out;
  StringStream stream{out};
  Packer packer(stream);
  packer.pack_array(2);
  packer.pack_uint16(static_cast<std::uint16_t>(code));
  Str(packer, message);
  return out;
}

}  // namespace courier::broker
