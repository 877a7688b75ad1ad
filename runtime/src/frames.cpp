#include "frames.hpp"

#include <msgpack.hpp>

#include "courier/codec.hpp"

#include "msgpack_reader.hpp"
#include "protocol.hpp"

namespace courier::detail {
namespace {


void PackBin(msgpack::packer<detail::StringWriter>& packer, std::string_view bytes) {
  packer.pack_bin(static_cast<std::uint32_t>(bytes.size()));
  packer.pack_bin_body(bytes.data(), static_cast<std::uint32_t>(bytes.size()));
}

void PackStr(msgpack::packer<detail::StringWriter>& packer, std::string_view text) {
  packer.pack_str(static_cast<std::uint32_t>(text.size()));
  packer.pack_str_body(text.data(), static_cast<std::uint32_t>(text.size()));
}

JobId ReadJobId(MsgpackReader& reader, std::string_view what) {
  const auto id = JobId::FromBytes(reader.ReadBin(what));
  if (!id) throw Error(ErrorCode::kBadRequest, std::string(what) + ": job id must be 16 bytes");
  return *id;
}

void ExpectArray(MsgpackReader& reader, std::string_view what, std::uint32_t min_fields) {
  const std::uint32_t fields = reader.ReadArrayHeader(what);
  if (fields < min_fields) {
    throw Error(ErrorCode::kBadRequest, std::string(what) + ": expected at least " +
                                            std::to_string(min_fields) + " fields");
  }
}

void ExpectEnd(const MsgpackReader& reader, std::string_view what) {
  if (!reader.AtEnd()) throw Error(ErrorCode::kBadRequest, std::string(what) + ": trailing bytes");
}

}  // namespace

std::string EncodeErrorBody(const JobId& job_id, ErrorCode code, std::string_view message) {
  std::string out;
  detail::StringWriter stream(out);
  msgpack::packer<detail::StringWriter> packer(stream);
  packer.pack_array(3);
  PackBin(packer, job_id.View());
  packer.pack_uint16(static_cast<std::uint16_t>(code));
  PackStr(packer, message);
  return out;
}

ErrorBody DecodeErrorBody(std::string_view bytes) {
  MsgpackReader reader(bytes);
  ExpectArray(reader, "error body", 3);
  ErrorBody body;
  body.job_id = ReadJobId(reader, "error body.job_id");
  const std::uint64_t code = reader.ReadUint("error body.code");
  body.code = IsWireCode(static_cast<std::uint32_t>(code)) && code <= UINT16_MAX
                  ? static_cast<ErrorCode>(code)
                  : ErrorCode::kInternal;
  body.message = std::string(reader.ReadStr("error body.message"));
  return body;
}

std::string EncodeReadyInfo(const ReadyInfo& info) {
  std::string out;
  detail::StringWriter stream(out);
  msgpack::packer<detail::StringWriter> packer(stream);
  packer.pack_array(info.keys.empty() ? 6 : 7);
  packer.pack_uint32(info.protocol_version);
  packer.pack_uint32(info.capacity);
  packer.pack_uint32(info.weight);
  PackStr(packer, info.host);
  packer.pack_uint64(info.pid);
  PackStr(packer, info.instance);
  if (!info.keys.empty()) {
    packer.pack_array(static_cast<std::uint32_t>(info.keys.size()));
    for (const KeyFingerprint& key : info.keys) {
      packer.pack_array(2);
      packer.pack_uint32(key.id);
      PackBin(packer, key.fingerprint);
    }
  }
  return out;
}

ReadyInfo DecodeReadyInfo(std::string_view bytes) {
  MsgpackReader reader(bytes);
  const std::uint32_t fields = reader.ReadArrayHeader("ready info");
  if (fields < 6) throw Error(ErrorCode::kBadRequest, "ready info: expected at least 6 fields");
  ReadyInfo info;
  const auto version = reader.ReadUint("ready info.protocol_version");
  if (version != kWorkerProtocolVersion) {
    throw Error(ErrorCode::kBadRequest, "ready info: unsupported worker protocol version " + std::to_string(version));
  }
  info.protocol_version = static_cast<std::uint32_t>(version);
  const auto capacity = reader.ReadUint("ready info.capacity");
  if (capacity < 1 || capacity > kMaxCapacity) {
    throw Error(ErrorCode::kBadRequest, "ready info: capacity must be in [1, " + std::to_string(kMaxCapacity) + "]");
  }
  info.capacity = static_cast<std::uint32_t>(capacity);
  const auto weight = reader.ReadUint("ready info.weight");
  if (weight < 1 || weight > kMaxWeight) {
    throw Error(ErrorCode::kBadRequest, "ready info: weight must be in [1, " + std::to_string(kMaxWeight) + "]");
  }
  info.weight = static_cast<std::uint32_t>(weight);
  const auto host = reader.ReadStr("ready info.host");
  info.pid = reader.ReadUint("ready info.pid");
  const auto instance = reader.ReadStr("ready info.instance");
  if (host.size() > 255 || instance.size() > 255) {
    throw Error(ErrorCode::kBadRequest, "ready info: host and instance are at most 255 bytes");
  }
  info.host = std::string(host);
  info.instance = std::string(instance);
  if (fields >= 7) {
    const std::uint32_t count = reader.ReadArrayHeader("ready info.keys");
    if (count > kMaxReadyKeys) {
      throw Error(ErrorCode::kBadRequest, "ready info: at most " + std::to_string(kMaxReadyKeys) + " keys");
    }
    for (std::uint32_t i = 0; i < count; ++i) {
      if (reader.ReadArrayHeader("ready info.keys[]") != 2) {
        throw Error(ErrorCode::kBadRequest, "ready info: a key is [id, fingerprint]");
      }
      KeyFingerprint key;
      const auto id = reader.ReadUint("ready info.keys[].id");
      const auto fingerprint = reader.ReadBin("ready info.keys[].fingerprint");
      if (id < 1 || id > UINT32_MAX || fingerprint.size() != 8) {
        throw Error(ErrorCode::kBadRequest, "ready info: a key is [id 1..2^32-1, 8-byte fingerprint]");
      }
      key.id = static_cast<std::uint32_t>(id);
      key.fingerprint = std::string(fingerprint);
      info.keys.push_back(std::move(key));
    }
  }
  return info;
}

std::string EncodeCredit(std::uint32_t capacity) {
  std::string out;
  detail::StringWriter stream(out);
  msgpack::packer<detail::StringWriter>(stream).pack_uint32(capacity);
  return out;
}

std::uint32_t DecodeCredit(std::string_view bytes) {
  MsgpackReader reader(bytes);
  const auto capacity = reader.ReadUint("credit");
  ExpectEnd(reader, "credit");
  if (capacity > kMaxCapacity) {
    throw Error(ErrorCode::kBadRequest, "credit: capacity must be in [0, " + std::to_string(kMaxCapacity) + "]");
  }
  return static_cast<std::uint32_t>(capacity);
}

std::string EncodeReject(const JobId& job_id, ErrorCode code) {
  std::string out;
  detail::StringWriter stream(out);
  msgpack::packer<detail::StringWriter> packer(stream);
  packer.pack_array(2);
  PackBin(packer, job_id.View());
  packer.pack_uint16(static_cast<std::uint16_t>(code));
  return out;
}

RejectBody DecodeReject(std::string_view bytes) {
  MsgpackReader reader(bytes);
  ExpectArray(reader, "reject", 2);
  RejectBody body;
  body.job_id = ReadJobId(reader, "reject.job_id");
  const auto code = reader.ReadUint("reject.code");
  body.code = IsWireCode(static_cast<std::uint32_t>(code)) ? static_cast<ErrorCode>(code) : ErrorCode::kInternal;
  return body;
}

std::string EncodeQuery(std::string_view name) {
  std::string out;
  detail::StringWriter stream(out);
  msgpack::packer<detail::StringWriter> packer(stream);
  packer.pack_array(2);
  PackStr(packer, name);
  packer.pack_map(0);
  return out;
}

std::string DecodeQueryName(std::string_view bytes) {
  MsgpackReader reader(bytes);
  ExpectArray(reader, "query", 1);
  const auto name = reader.ReadStr("query.name");
  if (name.size() > 64) throw Error(ErrorCode::kBadRequest, "query: name too long");
  return std::string(name);
}

}  // namespace courier::detail
