// courier/codec.hpp — typed MessagePack payloads: encode and decode the structs users
// declare with MSGPACK_DEFINE (or any type msgpack-c can pack and convert), and move them
// to and from a courier::Value.
//
//   struct Resize { std::string path; std::uint32_t width = 0; MSGPACK_DEFINE(path, width); };
//   std::string bytes = courier::Encode(Resize{"a.png", 640});
//   Resize job = courier::Decode<Resize>(bytes);          // untrusted input: limits apply
//   courier::Value v = courier::ToValue(job);              // ["a.png", 640]
//
// Decoding is hardened for hostile input exactly like DecodeValue: the whole document is
// checked against DecodeLimits (and for truncation and trailing bytes) before anything is
// allocated, so a forged length cannot reserve memory the input does not back.
//
// Thread-safety: free functions without shared state; safe to call from any thread.
// Throws: Error(kBadRequest) for bytes that are not exactly one MessagePack value within
// the limits; Error(kInvalidPayload) for a well-formed value of another shape than T;
// Error(kTooLarge) for a string, binary or container too big for MessagePack (4 GiB).
//
// This is the one public header that exposes msgpack-c, because payload structs need
// MSGPACK_DEFINE; the rest of the API uses std and courier types only.
#pragma once

#include <cstddef>
#include <limits>
#include <string>
#include <string_view>

#include <msgpack.hpp>

#include "courier/error.hpp"
#include "courier/value.hpp"

namespace courier {

namespace detail {

// msgpack-c's stream concept, appending to a caller's string (no intermediate sbuffer).
class StringWriter {
 public:
  explicit StringWriter(std::string& out) : out_(out) {}
  void write(const char* data, std::size_t size) { out_.append(data, size); }

 private:
  std::string& out_;
};

// Returns: the one MessagePack value in `bytes`, checked against `limits` before
// msgpack-c allocates. Throws: Error(kBadRequest). Defined in value_codec.cpp.
msgpack::object_handle Unpack(std::string_view bytes, const DecodeLimits& limits);

// Limits for data that is already in memory (FromValue): only the format's own bounds.
inline constexpr DecodeLimits kUnlimited{
    .max_bytes = std::numeric_limits<std::size_t>::max(),
    .max_array = std::numeric_limits<std::size_t>::max(),
    .max_map = std::numeric_limits<std::size_t>::max(),
    .max_str = std::numeric_limits<std::size_t>::max(),
    .max_bin = std::numeric_limits<std::size_t>::max(),
    .max_ext = std::numeric_limits<std::size_t>::max(),
    .max_depth = std::numeric_limits<std::size_t>::max(),
};

}  // namespace detail

// Returns: the MessagePack encoding of `value`.
template <class T>
std::string Encode(const T& value) {
  std::string out;
  detail::StringWriter writer(out);
  try {
    msgpack::pack(writer, value);
  } catch (const msgpack::container_size_overflow& e) {
    throw Error(ErrorCode::kTooLarge, std::string("cannot encode payload: ") + e.what());
  }
  return out;
}

// Returns: the T encoded in `bytes`, which must be exactly one MessagePack value.
// Throws: Error(kBadRequest) for malformed bytes, Error(kInvalidPayload) on a type mismatch.
template <class T>
T Decode(std::string_view bytes, const DecodeLimits& limits = {}) {
  const msgpack::object_handle handle = detail::Unpack(bytes, limits);
  try {
    return handle.get().as<T>();
  } catch (const msgpack::type_error&) {
    throw Error(ErrorCode::kInvalidPayload, "payload does not match the expected type");
  }
}

// Returns: `value` as the dynamic Value its encoding decodes to (a MSGPACK_DEFINE struct
// becomes an array of its fields; MSGPACK_DEFINE_MAP a map).
template <class T>
Value ToValue(const T& value) {
  return DecodeValue(Encode(value), detail::kUnlimited);
}

// Returns: `value` converted to T. Throws: Error(kInvalidPayload) if its shape is not T's.
template <class T>
T FromValue(const Value& value) {
  return Decode<T>(EncodeValue(value), detail::kUnlimited);
}

}  // namespace courier
