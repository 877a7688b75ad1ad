#include "msgpack_reader.hpp"

#include <string>

#include "courier/error.hpp"

namespace courier::detail {

void MsgpackReader::Fail(std::string_view what, std::string_view why) const {
  throw Error(ErrorCode::kBadRequest, std::string(what) + ": " + std::string(why) +
                                          " at byte " + std::to_string(offset_));
}

std::uint8_t MsgpackReader::Peek(std::string_view what) const {
  if (offset_ >= data_.size()) Fail(what, "truncated");
  return static_cast<std::uint8_t>(data_[offset_]);
}

std::uint8_t MsgpackReader::Take(std::string_view what) {
  const std::uint8_t byte = Peek(what);
  ++offset_;
  return byte;
}

std::uint64_t MsgpackReader::TakeBigEndian(std::size_t width, std::string_view what) {
  if (data_.size() - offset_ < width) Fail(what, "truncated");
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < width; ++i) {
    value = (value << 8) | static_cast<std::uint8_t>(data_[offset_ + i]);
  }
  offset_ += width;
  return value;
}

std::string_view MsgpackReader::TakeBytes(std::uint64_t length, std::string_view what) {
  if (data_.size() - offset_ < length) Fail(what, "truncated");
  const std::string_view bytes = data_.substr(offset_, length);
  offset_ += length;
  return bytes;
}

std::uint32_t MsgpackReader::ReadArrayHeader(std::string_view what) {
  const std::uint8_t tag = Take(what);
  if ((tag & 0xf0) == 0x90) return tag & 0x0f;
  if (tag == 0xdc) return static_cast<std::uint32_t>(TakeBigEndian(2, what));
  if (tag == 0xdd) return static_cast<std::uint32_t>(TakeBigEndian(4, what));
  --offset_;
  Fail(what, "expected an array");
}

std::uint32_t MsgpackReader::ReadMapHeader(std::string_view what) {
  const std::uint8_t tag = Take(what);
  if ((tag & 0xf0) == 0x80) return tag & 0x0f;
  if (tag == 0xde) return static_cast<std::uint32_t>(TakeBigEndian(2, what));
  if (tag == 0xdf) return static_cast<std::uint32_t>(TakeBigEndian(4, what));
  --offset_;
  Fail(what, "expected a map");
}

std::uint64_t MsgpackReader::ReadUint(std::string_view what) {
  const std::uint8_t tag = Take(what);
  if (tag <= 0x7f) return tag;
  switch (tag) {
    case 0xcc: return TakeBigEndian(1, what);
    case 0xcd: return TakeBigEndian(2, what);
    case 0xce: return TakeBigEndian(4, what);
    case 0xcf: return TakeBigEndian(8, what);
    // Signed encodings of non-negative values are accepted: some encoders emit them.
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
      --offset_;
      const std::int64_t value = ReadInt(what);
      if (value < 0) Fail(what, "expected a non-negative integer");
      return static_cast<std::uint64_t>(value);
    }
    default:
      --offset_;
      Fail(what, "expected an unsigned integer");
  }
}

std::int64_t MsgpackReader::ReadInt(std::string_view what) {
  const std::uint8_t tag = Take(what);
  if (tag <= 0x7f) return tag;
  if (tag >= 0xe0) return static_cast<std::int8_t>(tag);
  switch (tag) {
    case 0xcc: return static_cast<std::int64_t>(TakeBigEndian(1, what));
    case 0xcd: return static_cast<std::int64_t>(TakeBigEndian(2, what));
    case 0xce: return static_cast<std::int64_t>(TakeBigEndian(4, what));
    case 0xcf: {
      const std::uint64_t value = TakeBigEndian(8, what);
      if (value > static_cast<std::uint64_t>(INT64_MAX)) Fail(what, "integer out of range");
      return static_cast<std::int64_t>(value);
    }
    case 0xd0: return static_cast<std::int8_t>(TakeBigEndian(1, what));
    case 0xd1: return static_cast<std::int16_t>(TakeBigEndian(2, what));
    case 0xd2: return static_cast<std::int32_t>(TakeBigEndian(4, what));
    case 0xd3: return static_cast<std::int64_t>(TakeBigEndian(8, what));
    default:
      --offset_;
      Fail(what, "expected an integer");
  }
}

bool MsgpackReader::ReadBool(std::string_view what) {
  const std::uint8_t tag = Take(what);
  if (tag == 0xc2) return false;
  if (tag == 0xc3) return true;
  --offset_;
  Fail(what, "expected a boolean");
}

std::string_view MsgpackReader::ReadStr(std::string_view what) {
  const std::uint8_t tag = Take(what);
  if ((tag & 0xe0) == 0xa0) return TakeBytes(tag & 0x1f, what);
  switch (tag) {
    case 0xd9: return TakeBytes(TakeBigEndian(1, what), what);
    case 0xda: return TakeBytes(TakeBigEndian(2, what), what);
    case 0xdb: return TakeBytes(TakeBigEndian(4, what), what);
    default:
      --offset_;
      Fail(what, "expected a string");
  }
}

std::string_view MsgpackReader::ReadBin(std::string_view what) {
  const std::uint8_t tag = Take(what);
  switch (tag) {
    case 0xc4: return TakeBytes(TakeBigEndian(1, what), what);
    case 0xc5: return TakeBytes(TakeBigEndian(2, what), what);
    case 0xc6: return TakeBytes(TakeBigEndian(4, what), what);
    default:
      --offset_;
      Fail(what, "expected binary data");
  }
}

std::string_view MsgpackReader::ReadBytes(std::string_view what) {
  const std::uint8_t tag = Peek(what);
  if (tag >= 0xc4 && tag <= 0xc6) return ReadBin(what);
  return ReadStr(what);
}

bool MsgpackReader::NextIsNil() const {
  return offset_ < data_.size() && static_cast<std::uint8_t>(data_[offset_]) == 0xc0;
}

void MsgpackReader::ReadNil(std::string_view what) {
  if (Take(what) != 0xc0) {
    --offset_;
    Fail(what, "expected nil");
  }
}

void MsgpackReader::Skip(std::string_view what) { SkipDepth(what, 0); }

void MsgpackReader::SkipDepth(std::string_view what, int depth) {
  if (depth > kMaxSkipDepth) Fail(what, "nested too deeply");
  const std::uint8_t tag = Peek(what);
  if (tag <= 0x7f || tag >= 0xe0 || tag == 0xc0 || tag == 0xc2 || tag == 0xc3) {
    ++offset_;
    return;
  }
  if ((tag & 0xf0) == 0x90 || tag == 0xdc || tag == 0xdd) {
    const std::uint32_t count = ReadArrayHeader(what);
    for (std::uint32_t i = 0; i < count; ++i) SkipDepth(what, depth + 1);
    return;
  }
  if ((tag & 0xf0) == 0x80 || tag == 0xde || tag == 0xdf) {
    const std::uint32_t count = ReadMapHeader(what);
    for (std::uint32_t i = 0; i < count; ++i) {
      SkipDepth(what, depth + 1);
      SkipDepth(what, depth + 1);
    }
    return;
  }
  if ((tag & 0xe0) == 0xa0 || (tag >= 0xd9 && tag <= 0xdb)) {
    ReadStr(what);
    return;
  }
  if (tag >= 0xc4 && tag <= 0xc6) {
    ReadBin(what);
    return;
  }
  ++offset_;
  switch (tag) {
    case 0xcc: case 0xd0: TakeBytes(1, what); return;
    case 0xcd: case 0xd1: TakeBytes(2, what); return;
    case 0xce: case 0xd2: case 0xca: TakeBytes(4, what); return;
    case 0xcf: case 0xd3: case 0xcb: TakeBytes(8, what); return;
    case 0xd4: TakeBytes(2, what); return;
    case 0xd5: TakeBytes(3, what); return;
    case 0xd6: TakeBytes(5, what); return;
    case 0xd7: TakeBytes(9, what); return;
    case 0xd8: TakeBytes(17, what); return;
    case 0xc7: TakeBytes(TakeBigEndian(1, what) + 1, what); return;
    case 0xc8: TakeBytes(TakeBigEndian(2, what) + 1, what); return;
    case 0xc9: TakeBytes(TakeBigEndian(4, what) + 1, what); return;
    default:
      --offset_;
      Fail(what, "invalid type byte");
  }
}

}  // namespace courier::detail
