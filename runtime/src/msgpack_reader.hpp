// msgpack_reader.hpp — a strict, allocation-free reader for the small positional
// MessagePack frames of the protocol (envelope, error body, ready info).
//
// Why not msgpack::parse: its visitor parser reserves a heap stack on every call, and
// these frames are decoded once per job on the broker's hot path. Payloads, whose shape is
// the user's, are decoded by msgpack-c (value_codec.cpp).
//
// Every read checks the remaining length and the type byte; a mismatch throws
// courier::Error(kBadRequest) naming `what`. Views point into the caller's buffer.
#pragma once

#include <cstdint>
#include <string_view>

namespace courier::detail {

class MsgpackReader {
 public:
  explicit MsgpackReader(std::string_view bytes) : data_(bytes) {}

  std::uint32_t ReadArrayHeader(std::string_view what);
  std::uint32_t ReadMapHeader(std::string_view what);
  std::uint64_t ReadUint(std::string_view what);
  std::int64_t ReadInt(std::string_view what);
  bool ReadBool(std::string_view what);
  std::string_view ReadStr(std::string_view what);
  std::string_view ReadBin(std::string_view what);
  // Accepts str or bin (for peers whose encoders blur the two).
  std::string_view ReadBytes(std::string_view what);
  bool NextIsNil() const;
  void ReadNil(std::string_view what);
  // Skips one whole value of any type (nesting bounded by kMaxSkipDepth).
  void Skip(std::string_view what);

  std::size_t offset() const { return offset_; }
  bool AtEnd() const { return offset_ == data_.size(); }

  static constexpr int kMaxSkipDepth = 32;

 private:
  std::uint8_t Peek(std::string_view what) const;
  std::uint8_t Take(std::string_view what);
  std::uint64_t TakeBigEndian(std::size_t width, std::string_view what);
  std::string_view TakeBytes(std::uint64_t length, std::string_view what);
  void SkipDepth(std::string_view what, int depth);
  [[noreturn]] void Fail(std::string_view what, std::string_view why) const;

  std::string_view data_;
  std::size_t offset_ = 0;
};

}  // namespace courier::detail
