#include "envelope_codec.hpp"

#include <algorithm>
#include <cstring>
#include <msgpack.hpp>

#include "courier/codec.hpp"

#include "courier/error.hpp"
#include "msgpack_reader.hpp"
#include "protocol.hpp"

namespace courier::detail {
namespace {

constexpr std::uint32_t kEnvelopeFields = 12;
constexpr std::uint32_t kMaxEnvelopeFields = 15;  // fixarray: keeps `attempt` at a fixed offset


[[noreturn]] void Reject(const std::string& why) {
  throw Error(ErrorCode::kBadRequest, "envelope: " + why);
}

template <std::size_t N>
void CopyFixed(std::string_view bytes, std::array<std::uint8_t, N>& out, const char* what) {
  if (bytes.empty()) {
    out.fill(0);
    return;
  }
  if (bytes.size() != N) {
    Reject(std::string(what) + " must be " + std::to_string(N) + " bytes, got " +
           std::to_string(bytes.size()));
  }
  std::memcpy(out.data(), bytes.data(), N);
}

bool AllZero(const auto& bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; });
}

std::uint32_t CheckedU32(std::uint64_t value, const char* what) {
  if (value > UINT32_MAX) Reject(std::string(what) + " out of range");
  return static_cast<std::uint32_t>(value);
}

}  // namespace

Envelope EnvelopeView::ToEnvelope() const {
  Envelope envelope;
  envelope.version = version;
  envelope.attempt = attempt;
  envelope.job_id = job_id;
  envelope.service = std::string(service);
  envelope.created_at_ms = created_at_ms;
  envelope.deadline_ms = deadline_ms;
  envelope.max_attempts = max_attempts;
  envelope.priority = priority;
  envelope.trace_id = trace_id;
  envelope.key_id = key_id;
  envelope.nonce = nonce;
  envelope.mode = mode;
  return envelope;
}

std::string EncodeEnvelope(const Envelope& envelope) {
  if (envelope.version != kEnvelopeVersion) Reject("unsupported version");
  if (envelope.service.empty() || envelope.service.size() > kMaxServiceNameBytes) {
    Reject("service name must be 1.." + std::to_string(kMaxServiceNameBytes) + " bytes");
  }
  if (envelope.deadline_ms == 0) Reject("deadline must be set");
  if (envelope.max_attempts == 0) Reject("max_attempts must be at least 1");
  if (envelope.mode > ReplyMode::kEnqueue) Reject("unknown reply mode");

  std::string out;
  out.reserve(96 + envelope.service.size());
  detail::StringWriter stream(out);
  msgpack::packer<detail::StringWriter> packer(stream);
  packer.pack_array(kEnvelopeFields);
  packer.pack_uint8(static_cast<std::uint8_t>(envelope.version));  // a positive fixint
  packer.pack_fix_uint32(envelope.attempt);
  packer.pack_bin(kJobIdBytes);
  packer.pack_bin_body(reinterpret_cast<const char*>(envelope.job_id.bytes.data()), kJobIdBytes);
  packer.pack_str(static_cast<std::uint32_t>(envelope.service.size()));
  packer.pack_str_body(envelope.service.data(), static_cast<std::uint32_t>(envelope.service.size()));
  packer.pack_uint64(envelope.created_at_ms);
  packer.pack_uint64(envelope.deadline_ms);
  packer.pack_uint32(envelope.max_attempts);
  packer.pack_uint32(envelope.priority);
  if (AllZero(envelope.trace_id)) {
    packer.pack_bin(0);
  } else {
    packer.pack_bin(kTraceIdBytes);
    packer.pack_bin_body(reinterpret_cast<const char*>(envelope.trace_id.data()), kTraceIdBytes);
  }
  packer.pack_uint32(envelope.key_id);
  if (envelope.key_id == kUnsealedKeyId) {
    packer.pack_bin(0);
  } else {
    packer.pack_bin(kNonceBytes);
    packer.pack_bin_body(reinterpret_cast<const char*>(envelope.nonce.data()), kNonceBytes);
  }
  packer.pack_uint8(static_cast<std::uint8_t>(envelope.mode));
  return out;
}

EnvelopeView DecodeEnvelope(std::string_view bytes) {
  if (bytes.size() < kMinEnvelopeBytes) Reject("truncated (" + std::to_string(bytes.size()) + " bytes)");
  if (bytes.size() > kMaxEnvelopeBytes) Reject("larger than " + std::to_string(kMaxEnvelopeBytes) + " bytes");
  const auto header = static_cast<std::uint8_t>(bytes[0]);
  if ((header & 0xf0) != 0x90) Reject("must be a fixarray");
  const std::uint32_t fields = header & 0x0f;
  if (fields < kEnvelopeFields || fields > kMaxEnvelopeFields) {
    Reject("expected 12 to 15 fields, got " + std::to_string(fields));
  }
  if (static_cast<std::uint8_t>(bytes[2]) != 0xce) Reject("attempt must be a uint32 (0xce)");

  MsgpackReader reader(bytes);
  reader.ReadArrayHeader("envelope");
  EnvelopeView view;
  view.version = CheckedU32(reader.ReadUint("envelope.version"), "version");
  if (view.version != kEnvelopeVersion) Reject("unsupported version " + std::to_string(view.version));
  view.attempt = CheckedU32(reader.ReadUint("envelope.attempt"), "attempt");
  const std::string_view job_id = reader.ReadBin("envelope.job_id");
  if (job_id.size() != kJobIdBytes) Reject("job_id must be 16 bytes");
  std::memcpy(view.job_id.bytes.data(), job_id.data(), kJobIdBytes);
  view.service = reader.ReadStr("envelope.service");
  if (view.service.empty() || view.service.size() > kMaxServiceNameBytes) {
    Reject("service name must be 1.." + std::to_string(kMaxServiceNameBytes) + " bytes");
  }
  view.created_at_ms = reader.ReadUint("envelope.created_at");
  view.deadline_ms = reader.ReadUint("envelope.deadline");
  if (view.deadline_ms == 0) Reject("deadline must be set");
  view.max_attempts = CheckedU32(reader.ReadUint("envelope.max_attempts"), "max_attempts");
  if (view.max_attempts == 0) Reject("max_attempts must be at least 1");
  view.priority = CheckedU32(reader.ReadUint("envelope.priority"), "priority");
  CopyFixed(reader.ReadBin("envelope.trace_id"), view.trace_id, "trace_id");
  view.key_id = CheckedU32(reader.ReadUint("envelope.key_id"), "key_id");
  const std::string_view nonce = reader.ReadBin("envelope.nonce");
  if (view.key_id == kUnsealedKeyId ? !nonce.empty() : nonce.size() != kNonceBytes) {
    Reject("nonce must be 24 bytes when sealed and empty when not");
  }
  CopyFixed(nonce, view.nonce, "nonce");
  const std::uint64_t mode = reader.ReadUint("envelope.mode");
  if (mode > static_cast<std::uint64_t>(ReplyMode::kEnqueue)) Reject("unknown reply mode " + std::to_string(mode));
  view.mode = static_cast<ReplyMode>(mode);
  for (std::uint32_t i = kEnvelopeFields; i < fields; ++i) reader.Skip("envelope.reserved");
  if (!reader.AtEnd()) Reject("trailing bytes after the envelope");
  return view;
}

void PatchAttempt(char* bytes, std::size_t size, std::uint32_t attempt) {
  if (size < kMinEnvelopeBytes) Reject("truncated");
  bytes[kAttemptOffset + 0] = static_cast<char>(attempt >> 24);
  bytes[kAttemptOffset + 1] = static_cast<char>(attempt >> 16);
  bytes[kAttemptOffset + 2] = static_cast<char>(attempt >> 8);
  bytes[kAttemptOffset + 3] = static_cast<char>(attempt);
}

std::string_view AssociatedData(std::string_view envelope_bytes, char (&out)[kMaxEnvelopeBytes]) {
  if (envelope_bytes.size() < kMinEnvelopeBytes || envelope_bytes.size() > kMaxEnvelopeBytes) {
    Reject("size out of range");
  }
  std::memcpy(out, envelope_bytes.data(), envelope_bytes.size());
  std::memset(out + kAttemptOffset, 0, 4);
  return {out, envelope_bytes.size()};
}

}  // namespace courier::detail
